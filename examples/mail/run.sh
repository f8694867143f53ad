#!/usr/bin/env bash
# The mail bridge on loopback, with real mail servers: Dovecot (IMAP, IMAPS, LMTP) and an SMTP relay
# with STARTTLS and AUTH (aiosmtpd), started by scripts/mail-harness.sh, and one node of Gia Lai
# (Sở TT&TT 000.00.05.H21) whose [mail] routes the commune Ủy ban nhân dân xã Ia Kha
# (000.21.33.H21, a mailbox and no document system) to xa-iakha@gialai.gov.vn and reads
# vanthu@gialai.gov.vn. A clerk sends a dispatch with a PDF to the commune; it arrives in the
# commune's mailbox (read over IMAPS, the .edxml verified); the commune mails back a signed .edxml,
# which the node takes in to the clerk's inbox and answers with a signed receipt (01) by mail; a
# PDF mailed from Sở TT&TT's registered mailbox becomes a draft, approved by the clerk, signed and
# mailed to the commune. Every check fails the script (exit 1): scripts/test.sh counts it as a test.
# Demo configuration, TEST PKI, TEST mail accounts only.
#
# Usage: examples/mail/run.sh [--keep]
#   --keep   leave the mail servers and the node running at the end (it prints how to stop them)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

keep=""
case "${1:-}" in
--keep) keep=1 ;;
"") ;;
*)
  echo "usage: examples/mail/run.sh [--keep]" >&2
  exit 2
  ;;
esac

# --- prerequisites, checked before anything is built or started ---------------------------------
missing=()
for tool in cargo python3 openssl sed grep cmp mktemp seq cat cp mkdir rm setsid; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
packages=()
[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] || packages+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || packages+=(dovecot-lmtpd)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || packages+=(python3-aiosmtpd)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if ((${#missing[@]} + ${#packages[@]})); then
  if ((${#missing[@]})); then
    echo "examples/mail/run.sh needs: ${missing[*]} (not found on PATH)." >&2
    echo "  cargo: a Rust toolchain 1.95+ (https://rustup.rs); the others: Debian/Ubuntu's python3," >&2
    echo "  openssl, diffutils (cmp), util-linux (setsid), coreutils." >&2
  fi
  if ((${#packages[@]})); then
    echo "  The mail servers (Debian/Ubuntu): apt-get install --no-install-recommends ${packages[*]}" >&2
    echo "  (their install starts a system Dovecot on 143/993, which the demo does not use:" >&2
    echo "  'systemctl disable --now dovecot' stops it; scripts/test.sh installs them without starting it)." >&2
  fi
  exit 1
fi

# LIENTHONG_PROFILE=debug reuses the test build (the test suite runs this script that way).
profile=${LIENTHONG_PROFILE:-release}
if [ "$profile" = release ]; then
  echo "building lienthong (first time: a few minutes)…"
  cargo build --release --locked
else
  cargo build --locked
fi
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/lienthong"
pki=certs/test-only

# Two folders: the node's (configuration, store, certificates, what the demo reads out of the
# mailboxes) and the mail servers' (short: Dovecot's socket paths must stay under 108 bytes).
work=$(mktemp -d -t lienthong-mail.XXXXXX)
mail=$(mktemp -d -t lienthong-mh.XXXXXX)
node=$work/gialai
node_pid=""
cleanup() {
  local rc=$?
  trap '' INT TERM # a second Ctrl-C must not cut the stopping short
  if [ -n "$keep" ] && [ "$rc" = 0 ]; then
    return
  fi
  if [ -n "$node_pid" ]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  scripts/mail-harness.sh stop "$mail" 2>/dev/null || true
  if [ -n "$keep" ]; then
    echo "kept (after a failure): $work (node log: $node/log.jsonl) and $mail (dovecot.log, smtp.log)"
  elif [ "$rc" != 0 ]; then
    echo "the node's log (last lines):"
    tail -n 30 "$node/log.jsonl" 2>/dev/null || true
    echo "the mail servers' logs (last lines):"
    tail -n 15 "$mail/dovecot.log" "$mail/smtp.log" 2>/dev/null || true
    rm -rf "$work" "$mail"
  else
    rm -rf "$work" "$mail"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
# wait_until WHAT COMMAND...: polls COMMAND; 90 s only bounds what would never happen.
wait_until() {
  local what=$1
  shift
  for _ in $(seq 1 450); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out waiting for $what"
}
only() { # only FILE...: the one file a glob found in a folder the demo filled
  if [ $# != 1 ] || [ ! -f "$1" ]; then fail "expected one file, found: $*"; fi
  echo "$1"
}
json() { # json EXPRESSION: evaluates EXPRESSION on the JSON document on stdin (as `d`)
  python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

step "Starting the mail servers (scripts/mail-harness.sh start $mail)"
scripts/mail-harness.sh start "$mail" >/dev/null
# MAIL_HOST, MAIL_CA, MAIL_*_PORT, the accounts: see scripts/mail-harness.sh.
# shellcheck source=/dev/null
. "$mail/env"
echo "Dovecot: IMAP 127.0.0.1:$MAIL_IMAP_PORT (STARTTLS), IMAPS :$MAIL_IMAPS_PORT, LMTP :$MAIL_LMTP_PORT"
echo "relay:   SMTP :$MAIL_SMTP_PORT (STARTTLS + AUTH), SMTPS :$MAIL_SMTPS_PORT (TLS + AUTH) -> Dovecot LMTP"
mb() { python3 "$here/mailbox.py" "$1" --env "$mail/env" "${@:2}"; }

# The node's folder: its configuration, pointed at the harness (ports, its test CA), and the
# certificates it needs from the test PKI.
mkdir -p "$node/certs"
cp "$pki"/{root-ca.cert.pem,chain.pem,stttt-gialai.key.pem,stttt-gialai.cert.pem} "$node/certs/"
cp "$MAIL_CA" "$node/mail-ca.pem"
sed -e 's|^listen = .*|listen = "127.0.0.1:0"|' \
  -e "s|^port = 587$|port = $MAIL_SMTP_PORT|" -e "s|^port = 993$|port = $MAIL_IMAPS_PORT|" \
  "$here/gialai.toml" >"$node/gialai.toml"
if ! grep -q "^port = $MAIL_SMTP_PORT$" "$node/gialai.toml" || ! grep -q "^port = $MAIL_IMAPS_PORT$" "$node/gialai.toml"; then
  fail "examples/mail/gialai.toml no longer has the lines 'port = 587' and 'port = 993' this script replaces"
fi
# The passwords reach the node through the environment ("env:NAME" in the configuration).
export LIENTHONG_SMTP_PASSWORD=$MAIL_SMTP_PASSWORD LIENTHONG_IMAP_PASSWORD=$MAIL_PASSWORD

step "Starting Gia Lai's node with [mail] (lienthong serve --config $node/gialai.toml)"
"$bin" serve --config "$node/gialai.toml" --ready-file "$node/ready" >"$node/log.jsonl" 2>&1 &
node_pid=$!
for _ in $(seq 1 600); do
  [ -f "$node/ready" ] && break
  kill -0 "$node_pid" 2>/dev/null || break
  sleep 0.1
done
[ -f "$node/ready" ] || fail "the node did not start"
clerk=$(sed -n 's|^listen=||p' "$node/ready")
echo "clerk API http://$clerk; the node sends as $MAIL_USER through the relay and reads $MAIL_USER over IMAPS"
GL=(--node "http://$clerk" --token demo-token-stttt)
OP=(--node "http://$clerk" --token demo-token-operator)

# --- 1. a dispatch to the mail-only commune ----------------------------------------------------
pdf="$work/Công văn triển khai hộp thư công vụ.pdf"
printf '%%PDF-1.4\n%% Công văn số …/STTTT-CĐS (demo)\n%%%%EOF\n' >"$pdf"

step "Sở TT&TT sends a dispatch with a PDF to Ủy ban nhân dân xã Ia Kha (000.21.33.H21), routed to $MAIL_COMMUNE_USER"
sent=$("$bin" send "${GL[@]}" --json --to 000.21.33.H21 --notation STTTT-CĐS \
  --subject "V/v triển khai hộp thư công vụ @gialai.gov.vn cho cấp xã" --priority 1 \
  --signer "Nguyễn Văn Ánh" --position "Phó Giám đốc" --competence "KT. GIÁM ĐỐC" \
  --attach "$pdf" --idempotency-key demo-mail-1)
id=$(echo "$sent" | json 'd["id"]')
echo "$sent" | json '"document %s, DocumentId %s" % (d["id"], d["document_id"])'

delivered() { "$bin" sent show "${GL[@]}" --json "$id" | grep -q '"state": "delivered"'; }
step "The outbox hands it to the relay (delivered = the relay accepted it)"
wait_until "the mail delivery" delivered
"$bin" sent show "${GL[@]}" --json "$id" |
  json '"\n".join("  to %s by %s -> %s after %s attempt(s)" % (x["recipient"], x["route"], x["state"], x["attempts"]) for x in d["deliveries"])'

step "The commune's mailbox ($MAIL_COMMUNE_USER), read over IMAPS like any mail client would"
mb read --user "$MAIL_COMMUNE_USER" --password "$MAIL_COMMUNE_PASSWORD" --nth 1 \
  --out "$work/xa-iakha-1" | tee "$work/xa-iakha-1.txt"
grep -q '^  Subject:  \[KHẨN\] \[Văn bản điện tử\] .*V/v triển khai hộp thư công vụ' "$work/xa-iakha-1.txt" ||
  fail "the mail's subject is not the document's"
got_pdf=$(only "$work"/xa-iakha-1/*.pdf)
cmp "$pdf" "$got_pdf" && echo "the PDF is byte-identical to the one the clerk sent"
edxml=$(only "$work"/xa-iakha-1/*.edxml)
echo "the signed package, checked by the commune with lienthong verify (its certificate chain to the test root):"
"$bin" verify --trust "$pki/root-ca.cert.pem" "$edxml"

# --- 2. the commune answers by mail with a signed .edxml ---------------------------------------
step "The commune signs a report with its own certificate (TEST: issued now by the test issuing CA)"
commune=$work/xa-iakha
mkdir -p "$commune"
cat >"$commune/signing.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = 1.3.6.1.4.1.311.10.3.12, emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT
# The agency code in the subject's serialNumber binds the certificate to the commune (README,
# sender binding): no registry entry is needed for it.
{
  openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$commune/key.pem"
  openssl req -new -utf8 -key "$commune/key.pem" -out "$commune/req.csr" \
    -subj "/C=VN/L=Gia Lai/O=Ủy ban nhân dân tỉnh Gia Lai/serialNumber=000.21.33.H21/CN=Ủy ban nhân dân xã Ia Kha"
  openssl x509 -req -in "$commune/req.csr" -CA "$pki/issuing-ca.cert.pem" -CAkey "$pki/issuing-ca.key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -extfile "$commune/signing.ext" -out "$commune/cert.pem"
} 2>"$commune/openssl.log" || {
  cat "$commune/openssl.log"
  fail "openssl could not issue the commune's test certificate"
}
report="$commune/Báo cáo kết quả triển khai.pdf"
printf '%%PDF-1.4\n%% Báo cáo số 15/UBND-VP (demo)\n%%%%EOF\n' >"$report"
"$bin" package new --from 000.21.33.H21 --from-name "Ủy ban nhân dân xã Ia Kha" \
  --to 000.00.05.H21 --to-name "Sở Thông tin và Truyền thông tỉnh Gia Lai" \
  --number 15 --notation UBND-VP --type-name "Báo cáo" \
  --subject "Báo cáo kết quả triển khai hộp thư công vụ tại xã Ia Kha" \
  --signer "Trần Thị Hoa" --competence "TM. ỦY BAN NHÂN DÂN" --position "Chủ tịch" \
  --attach "$report" -o "$commune/bao-cao.edxml"
"$bin" sign --key "$commune/key.pem" --cert "$commune/cert.pem" --chain "$pki/chain.pem" \
  "$commune/bao-cao.edxml" -o "$commune/15-UBND-VP.edxml"
"$bin" verify --trust "$pki/root-ca.cert.pem" "$commune/15-UBND-VP.edxml"

step "…and mails it from $MAIL_COMMUNE_USER to the node's mailbox $MAIL_USER"
mb send --from "$MAIL_COMMUNE_USER" --from-name "Văn thư UBND xã Ia Kha" --to "$MAIL_USER" \
  --subject "Gửi văn bản điện tử số 15/UBND-VP" \
  --text "Kính gửi Sở Thông tin và Truyền thông tỉnh Gia Lai. Ủy ban nhân dân xã Ia Kha gửi báo cáo số 15/UBND-VP (tệp .edxml đã ký số đính kèm)." \
  "$commune/15-UBND-VP.edxml"

in_inbox() { "$bin" inbox list "${GL[@]}" --json | json 'len(d["items"])' | grep -qx 1; }
step "The node takes it in (signature checked, sender bound by the certificate): Sở TT&TT's inbox"
wait_until "the mailed document in the clerk's inbox" in_inbox
"$bin" inbox list "${GL[@]}"
docid=$("$bin" inbox list "${GL[@]}" --json | json 'd["items"][0]["document_id"]')
"$bin" inbox list "${GL[@]}" --json |
  json '"\n".join("  %s from %s: %s\n  signer %s\n  %s" % (i["document_id"], i["sender"], i["subject"], i["signer"], i["signature"]["description"]) for i in d["items"])'
echo "the node's mailbox ($MAIL_USER): the mail taken in is moved out of INBOX"
mb folders --user "$MAIL_USER" --password "$MAIL_PASSWORD" --until-empty INBOX

step "The receipt (01, signed by Sở TT&TT) goes back by mail to $MAIL_COMMUNE_USER"
mb read --user "$MAIL_COMMUNE_USER" --password "$MAIL_COMMUNE_PASSWORD" --nth 2 \
  --out "$work/xa-iakha-2" | tee "$work/xa-iakha-2.txt"
receipt=$(only "$work"/xa-iakha-2/*.edxml)
"$bin" verify --trust "$pki/root-ca.cert.pem" "$receipt"
"$bin" inspect "$receipt"
about=$("$bin" inspect --json "$receipt" | json '"%s %s %s" % (d["package"]["kind"], d["package"]["status_code"], d["package"]["response_for"]["document_id"])')
[ "$about" = "status 01 $docid" ] || fail "the receipt is '$about', not 'status 01 $docid'"

step "Sở TT&TT's official (so-tttt@gialai.gov.vn, [[mail.notify]]) is told of the arrival"
mb read --user "$MAIL_OFFICIAL_USER" --password "$MAIL_OFFICIAL_PASSWORD" --nth 1 --out "$work/so-tttt-1"

# --- 3. a PDF from an agency's registered mailbox becomes a draft ---------------------------------
step "An official mails a PDF from Sở TT&TT's registered mailbox ($MAIL_OFFICIAL_USER) to $MAIL_USER: a draft, nothing signed"
draft_pdf="$work/Đề nghị cập nhật danh sách hộp thư.pdf"
printf '%%PDF-1.4\n%% Đề nghị cập nhật danh sách hộp thư công vụ (demo)\n%%%%EOF\n' >"$draft_pdf"
mb send --from "$MAIL_OFFICIAL_USER" --from-name "Nguyễn Văn Ánh — Sở TT&TT" --to "$MAIL_USER" \
  --subject "V/v đề nghị các xã cập nhật danh sách hộp thư công vụ" \
  --text "Nhờ văn thư trình ký và gửi văn bản đính kèm tới UBND xã Ia Kha." "$draft_pdf"
has_draft() { "$bin" drafts list "${GL[@]}" --json | json 'len(d["items"])' | grep -qx 1; }
wait_until "the draft" has_draft
"$bin" drafts list "${GL[@]}"
draft=$("$bin" drafts list "${GL[@]}" --json | json 'd["items"][0]["id"]')

step "Sở TT&TT's clerk approves draft $draft: the node numbers it, signs it and mails it to the commune"
approved=$("$bin" drafts approve "${GL[@]}" --json "$draft" --to 000.21.33.H21 --notation STTTT-CĐS \
  --signer "Nguyễn Văn Ánh" --position "Phó Giám đốc" --competence "KT. GIÁM ĐỐC" \
  --idempotency-key demo-mail-draft-1)
id=$(echo "$approved" | json 'd["id"]')
echo "$approved" | json '"document %s, DocumentId %s" % (d["id"], d["document_id"])'
wait_until "the approved draft's delivery" delivered
mb read --user "$MAIL_COMMUNE_USER" --password "$MAIL_COMMUNE_PASSWORD" --nth 3 \
  --out "$work/xa-iakha-3" | tee "$work/xa-iakha-3.txt"
grep -q '^  Subject:  \[Văn bản điện tử\] .*V/v đề nghị các xã cập nhật' "$work/xa-iakha-3.txt" ||
  fail "the approved draft's mail is not in the commune's mailbox"
cmp "$draft_pdf" "$(only "$work"/xa-iakha-3/*.pdf)" && echo "the PDF is the one the official mailed"
"$bin" verify --trust "$pki/root-ca.cert.pem" "$(only "$work"/xa-iakha-3/*.edxml)"

step "The operator's mail log: every mail the node took in and what it became"
"$bin" admin mail list "${OP[@]}"

step "The node's /readyz and /metrics report the bridge"
python3 - "http://$clerk" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
r = json.load(urllib.request.urlopen(base + '/readyz', timeout=10))
print('  /readyz: %s; relay %s, mailbox %s' % (r['status'], r['mail']['smtp']['state'], r['mail']['imap']['state']))
for line in urllib.request.urlopen(base + '/metrics', timeout=10).read().decode().splitlines():
    if line.startswith('lienthong_mail_') and ('_total' in line or 'connected' in line):
        print('  ' + line)
PY

step "The audit chain verifies (every mail sent and taken in is in it)"
"$bin" audit verify --store "sqlite://$node/gialai.db"

# --- how to look for yourself -------------------------------------------------------------------
step "Read the mailboxes with any IMAP client"
cat <<EOF
  server      localhost (or 127.0.0.1), IMAPS port $MAIL_IMAPS_PORT, or IMAP + STARTTLS port $MAIL_IMAP_PORT
  CA file     $MAIL_CA (the servers' certificate is issued by this TEST CA for localhost)
  accounts    $MAIL_COMMUNE_USER / $MAIL_COMMUNE_PASSWORD   (the commune: two dispatches and a receipt)
              $MAIL_USER / $MAIL_PASSWORD     (the node's mailbox: taken-in mail is in Processed)
              $MAIL_OFFICIAL_USER / $MAIL_OFFICIAL_PASSWORD (the official: the notification)
  sending     SMTP localhost:$MAIL_SMTP_PORT (STARTTLS) or :$MAIL_SMTPS_PORT (TLS), AUTH $MAIL_SMTP_USER / $MAIL_SMTP_PASSWORD
  e.g.        curl --cacert $MAIL_CA -u '$MAIL_COMMUNE_USER:$MAIL_COMMUNE_PASSWORD' 'imaps://localhost:$MAIL_IMAPS_PORT/INBOX;UID=1'
EOF
if [ -n "$keep" ]; then
  cat <<EOF

kept running (--keep): the mail servers (above) and the node (clerk API http://$clerk, PID $node_pid,
tokens demo-token-stttt / demo-token-operator, log $node/log.jsonl). Stop them with
  kill $node_pid; scripts/mail-harness.sh stop $mail; rm -rf $work $mail
EOF
else
  echo "  (these servers stop now; examples/mail/run.sh --keep leaves them running)"
fi
echo "mail example finished"
