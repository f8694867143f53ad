#!/usr/bin/env bash
# Test-only mail servers on loopback, for the mail demo (examples/mail/run.sh), the mail benchmark
# and anyone trying the mail bridge by hand: Dovecot (IMAP, IMAPS, LMTP, auth) and aiosmtpd
# (tests/mail/smtp_lmtp.py: STARTTLS + AUTH on one port, implicit TLS + AUTH on another) handing
# every accepted message to Dovecot over LMTP. No systemd, nothing outside DIR, nothing installed.
#
#   scripts/mail-harness.sh start DIR   start both on free loopback ports; writes DIR/env and prints it
#   scripts/mail-harness.sh stop DIR    stop what `start DIR` started (by PID; safe to repeat)
#
# The same servers, users, passwords and certificates as the Rust tests' harness
# (tests/common/mail.rs; the recipe and its gotchas: ../shared/docs/mail-harness.md):
#   - a test CA and a server certificate it issued for `localhost` and `127.0.0.1` (rustls refuses
#     a bare self-signed certificate as a server's): clients trust DIR/tls/ca.pem and connect to
#     localhost or 127.0.0.1;
#   - four accounts (TEST passwords, on loopback only):
#       vanthu@gialai.gov.vn     matkhau-thu     the mailbox a node reads ([mail.imap])
#       lienthong@gialai.gov.vn  mat-khau-gui    the relay's one submission account ([mail.smtp])
#       xa-iakha@gialai.gov.vn   matkhau-iakha   a mail-only commune ([[mail.route]])
#       so-tttt@gialai.gov.vn    matkhau-sotttt  a mail-only official (notifications, drafts)
#     any other address @gialai.gov.vn is refused by LMTP (the relay answers 550);
#   - as root the mailboxes belong to `nobody` (Dovecot refuses uid 0 for mail); as anyone else
#     Dovecot runs rootless;
#   - the relay's switches are files in DIR/control (reply: answer DATA with its first line;
#     bounce: accept refused recipients and mail a DSN back), its envelopes DIR/control/envelopes.jsonl.
#
# DIR must be short (Dovecot's socket paths under DIR/run must stay below 108 bytes; mktemp -d
# under /tmp is fine) and, as root, reachable by the `nobody` and `dovecot` users (not under /root).
#
# DIR/env holds shell assignments (`. DIR/env` or `set -a; . DIR/env; set +a`):
#   MAIL_DIR MAIL_HOST MAIL_CA
#   MAIL_IMAP_PORT MAIL_IMAPS_PORT MAIL_LMTP_PORT MAIL_SMTP_PORT (STARTTLS) MAIL_SMTPS_PORT (TLS)
#   MAIL_SMTP_USER MAIL_SMTP_PASSWORD            the relay's submission account (lienthong@)
#   MAIL_USER MAIL_PASSWORD                      the mailbox a node reads (vanthu@)
#   MAIL_COMMUNE_USER MAIL_COMMUNE_PASSWORD      the mail-only commune (xa-iakha@)
#   MAIL_OFFICIAL_USER MAIL_OFFICIAL_PASSWORD    the mail-only official (so-tttt@)
#   MAIL_ACCOUNTS                                every account, "address:password" separated by commas
#   MAIL_CONTROL                                 the relay's switch folder
#   MAIL_DOVECOT_PID MAIL_SMTP_PID               the servers' process ids
set -euo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
case "$cmd" in start | stop) ;; *) usage ;; esac
D=$(realpath -m -- "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
RELAY=$(realpath -m -- "$HERE/../tests/mail/smtp_lmtp.py")
PY=/usr/bin/python3 # Debian's: python3-aiosmtpd installs into its dist-packages

# The accounts (address, password) — tests/common/mail.rs ACCOUNTS.
ACCOUNTS=(
  "vanthu@gialai.gov.vn:matkhau-thu"
  "lienthong@gialai.gov.vn:mat-khau-gui"
  "xa-iakha@gialai.gov.vn:matkhau-iakha"
  "so-tttt@gialai.gov.vn:matkhau-sotttt"
)
SUBMIT_USER=lienthong@gialai.gov.vn
SUBMIT_PASSWORD=mat-khau-gui
START_DEADLINE_MS=30000 # a loaded 2-core machine; a server not up by then is broken

say() { printf 'mail-harness: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- processes, by PID ------------------------------------------------------------------------

# alive PID: running and not a zombie (a server re-parented to PID 1 stays a zombie until reaped).
alive() {
  local stat
  [ -n "$1" ] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # "PID (COMM) STATE …": COMM may hold spaces and parentheses, the state follows the last ')'.
  stat=${stat##*) }
  [[ $stat != Z* ]]
}
# ours PID: the process was started by this harness for DIR (its command line names DIR), so a
# stale PID file never makes `stop` signal an unrelated process that reused the number.
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$D/"
}
# stop_pid PIDFILE NAME: SIGTERM, SIGKILL after 5 s; removes PIDFILE.
stop_pid() {
  local file=$1 name=$2 pid t0
  [ -f "$file" ] || return 0
  pid=$(tr -dc '0-9' <"$file")
  if [ -n "$pid" ] && alive "$pid" && ours "$pid"; then
    t0=$(now_ms)
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do
      if (($(now_ms) - t0 > 5000)); then kill -KILL "$pid" 2>/dev/null || true; fi
      sleep 0.05
    done
    say "$name stopped in $(($(now_ms) - t0)) ms"
  fi
  rm -f "$file"
}

stop() {
  [ -d "$D" ] || return 0
  stop_pid "$D/smtp.pid" aiosmtpd
  # Dovecot's master: its children (login, auth, imap, lmtp) exit when it is gone.
  stop_pid "$D/dovecot.pid" dovecot
}

# --- start --------------------------------------------------------------------------------------

check_tools() {
  local missing=()
  [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
  [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
  if [ ! -x "$PY" ]; then
    missing+=(python3 python3-aiosmtpd)
  elif ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    missing+=(python3-aiosmtpd)
  fi
  command -v openssl >/dev/null || missing+=(openssl)
  command -v setsid >/dev/null || missing+=(util-linux)
  if ((${#missing[@]})); then
    die "missing: ${missing[*]}. On Debian/Ubuntu: apt-get install --no-install-recommends ${missing[*]}
  (scripts/test.sh installs them; it keeps the packages' system Dovecot from starting)"
  fi
  [ -r "$RELAY" ] || die "the SMTP relay script is missing: $RELAY"
}

# free_ports N: N distinct free loopback ports (bound together, then released).
free_ports() {
  "$PY" - "$1" <<'PY'
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in ss))
PY
}

# accepts PORT...: a connection to 127.0.0.1:PORT succeeds, for each PORT.
accepts() {
  "$PY" -c '
import socket, sys
for port in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(port)), 0.5).close()' "$@" 2>/dev/null
}

# wait_ready NAME PID LOG... -- CHECK...: until CHECK succeeds; fails (with the LOGs' ends) if
# PID exits or the deadline passes.
wait_ready() {
  local name=$1 pid=$2 t0 why logs=()
  shift 2
  while [ "$1" != -- ]; do
    logs+=("$1")
    shift
  done
  shift
  t0=$(now_ms)
  until "$@"; do
    why=""
    alive "$pid" || why="exited during start-up"
    (($(now_ms) - t0 > START_DEADLINE_MS)) && why="not ready after $((START_DEADLINE_MS / 1000)) s"
    if [ -n "$why" ]; then
      say "$name $why; the end of its logs:"
      local log
      for log in "${logs[@]}"; do
        [ -s "$log" ] && tail -n 40 -- "$log" >&2
      done
      return 1
    fi
    sleep 0.05
  done
  say "$name up in $(($(now_ms) - t0)) ms"
}

# spawn PIDFILE LOG COMMAND...: COMMAND in its own session (a Ctrl-C or a closing terminal of the
# caller does not reach it; `stop` does), stdin from /dev/null, stdout and stderr to LOG.
spawn() {
  local pidfile=$1 log=$2
  shift 2
  # Without job control a background job is not a process-group leader, so setsid execs COMMAND
  # in place and $! is COMMAND's own PID.
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}

# make_tls DIR: DIR/ca.pem (a test CA) and DIR/cert.pem + DIR/key.pem (a server certificate it
# issued for localhost and 127.0.0.1) — tests/common/mail.rs make_tls.
make_tls() {
  local t=$1
  cat >"$t/server.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
EXT
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
      -subj "/CN=lienthong mail test CA" -keyout "$t/ca.key" -out "$t/ca.pem"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
      -keyout "$t/key.pem" -out "$t/req.csr"
    openssl x509 -req -in "$t/req.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
      -days 7 -extfile "$t/server.ext" -out "$t/cert.pem"
  ) >"$t/openssl.log" 2>&1 || {
    cat "$t/openssl.log" >&2
    return 1
  }
  chmod 644 "$t/ca.pem" "$t/cert.pem"
}

start() {
  check_tools
  # Dovecot's longest socket path is base_dir + /token-login/imap-urlauth; sun_path holds 107.
  local longest="$D/run/token-login/imap-urlauth"
  ((${#longest} < 108)) || die "DIR is too long for Dovecot's socket paths (${#D} characters; keep it under 70, e.g. mktemp -d -t mh.XXXXXX)"
  if [ -f "$D/dovecot.pid" ] || [ -f "$D/smtp.pid" ]; then
    local p
    for p in "$D/dovecot.pid" "$D/smtp.pid"; do
      if [ -f "$p" ] && alive "$(tr -dc '0-9' <"$p")" && ours "$(tr -dc '0-9' <"$p")"; then
        die "servers of $D are running: '$0 stop $D' first"
      fi
    done
  fi
  # DIR is new, empty, or a stopped harness's (whose mailboxes and logs are replaced): never a
  # folder of something else.
  if [ -d "$D" ] && [ -n "$(ls -A "$D")" ] && ! grep -qs '^# Written by scripts/mail-harness.sh' "$D/dovecot.conf"; then
    die "$D is not empty and not a mail harness's folder: give a new or empty DIR"
  fi
  local root=""
  [ "$(id -u)" = 0 ] && root=1
  if [ -n "$root" ]; then
    # Every existing folder above DIR must let other users through (mode o+x).
    local a=$D
    while [ "$a" != / ]; do
      a=$(dirname "$a")
      [ -d "$a" ] || continue
      [ "$(($(stat -c '%a' "$a") % 2))" = 1 ] ||
        die "$a is not searchable by other users, so Dovecot's mail processes (as nobody) cannot reach $D: put DIR elsewhere, e.g. under /tmp"
    done
  fi
  mkdir -p "$D"
  rm -rf "$D"/{run,state,mail,tls,control} "$D"/{env,users,dovecot.conf,dovecot.log,dovecot.out,smtp.log}
  mkdir -p "$D"/{run,state,mail,tls,control}
  # Dovecot's unprivileged processes (auth as `dovecot`, mail as `nobody`) must get in.
  chmod 755 "$D"

  local IMAP IMAPS LMTP AUTH SMTP SMTPS
  read -r IMAP IMAPS LMTP AUTH SMTP SMTPS <<<"$(free_ports 6)"
  make_tls "$D/tls"

  local acc users=""
  for acc in "${ACCOUNTS[@]}"; do users+="${acc%%:*}:{PLAIN}${acc#*:}::::::"$'\n'; done
  printf '%s' "$users" >"$D/users"

  local MUID MGID ROOTLESS
  if [ -n "$root" ]; then
    MUID=$(id -u nobody)
    MGID=$(id -g nobody)
    chown "$MUID:$MGID" "$D/mail"
    ROOTLESS=""
  else
    MUID=$(id -u)
    MGID=$(id -g)
    ROOTLESS="default_login_user = $(id -un)
default_internal_user = $(id -un)
default_internal_group = $(id -gn)
service imap-login {
  chroot =
}
service anvil {
  chroot =
}"
  fi

  cat >"$D/dovecot.conf" <<CONF
# Written by scripts/mail-harness.sh: TEST ONLY, loopback only.
instance_name = mt-$IMAP
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$D/tls/cert.pem
ssl_key = <$D/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# Fast failures: no 2 s delay on a wrong password, no growing per-address penalty.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
mail_location = maildir:~/Maildir
first_valid_uid = $MUID
first_valid_gid = $MGID
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/users
}
userdb {
  driver = static
  args = uid=$MUID gid=$MGID home=$D/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP
  }
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = $AUTH
  }
}
protocol lmtp {
  postmaster_address = postmaster@gialai.gov.vn
}
$ROOTLESS
CONF

  # From here on a failure stops whatever was started.
  spawn "$D/dovecot.pid" "$D/dovecot.out" /usr/sbin/dovecot -F -c "$D/dovecot.conf"
  local dpid
  dpid=$(cat "$D/dovecot.pid")
  wait_ready dovecot "$dpid" "$D/dovecot.out" "$D/dovecot.log" -- accepts "$IMAPS" "$IMAP" "$LMTP" || {
    stop
    exit 1
  }

  spawn "$D/smtp.pid" "$D/smtp.log" "$PY" "$RELAY" --port "$SMTP" --tls-port "$SMTPS" \
    --cert "$D/tls/cert.pem" --key "$D/tls/key.pem" --lmtp "127.0.0.1:$LMTP" \
    --user "$SUBMIT_USER" --password "$SUBMIT_PASSWORD" --control "$D/control"
  local spid
  spid=$(cat "$D/smtp.pid")
  # It prints "ready" once both ports accept connections.
  wait_ready aiosmtpd "$spid" "$D/smtp.log" -- grep -qx ready "$D/smtp.log" || {
    stop
    exit 1
  }

  local all=""
  for acc in "${ACCOUNTS[@]}"; do all+="${all:+,}$acc"; done
  {
    echo "# scripts/mail-harness.sh start: TEST servers on loopback (stop: scripts/mail-harness.sh stop DIR)"
    printf 'MAIL_DIR=%q\n' "$D"
    echo "MAIL_HOST=localhost"
    printf 'MAIL_CA=%q\n' "$D/tls/ca.pem"
    echo "MAIL_IMAP_PORT=$IMAP"
    echo "MAIL_IMAPS_PORT=$IMAPS"
    echo "MAIL_LMTP_PORT=$LMTP"
    echo "MAIL_SMTP_PORT=$SMTP"
    echo "MAIL_SMTPS_PORT=$SMTPS"
    echo "MAIL_SMTP_USER=$SUBMIT_USER"
    echo "MAIL_SMTP_PASSWORD=$SUBMIT_PASSWORD"
    echo "MAIL_USER=${ACCOUNTS[0]%%:*}"
    echo "MAIL_PASSWORD=${ACCOUNTS[0]#*:}"
    echo "MAIL_COMMUNE_USER=${ACCOUNTS[2]%%:*}"
    echo "MAIL_COMMUNE_PASSWORD=${ACCOUNTS[2]#*:}"
    echo "MAIL_OFFICIAL_USER=${ACCOUNTS[3]%%:*}"
    echo "MAIL_OFFICIAL_PASSWORD=${ACCOUNTS[3]#*:}"
    echo "MAIL_ACCOUNTS=$all"
    printf 'MAIL_CONTROL=%q\n' "$D/control"
    echo "MAIL_DOVECOT_PID=$dpid"
    echo "MAIL_SMTP_PID=$spid"
  } >"$D/env.tmp"
  mv "$D/env.tmp" "$D/env"
  cat "$D/env"
}

"$cmd"
