#!/usr/bin/env bash
# Checks what an operator installs (README, "Installing a node"): the systemd unit passes
# `systemd-analyze verify`, the Debian package built by cargo-deb has the metadata and files it
# must, and the package's binary, unpacked into a scratch root, starts on its packaged
# configuration (pointed at the test PKI) and stops cleanly on SIGTERM.
#
# The .deb checked here is built from the debug binary the test suite has already built
# (`packaging/build-deb.sh --profile dev --no-build`: cargo-deb, stripped): the package definition is what
# is tested, and a second, optimised build would cost CI ten minutes. A real release is built
# with `packaging/build-deb.sh` (profile dist: fat LTO, the profile the README's Performance figures use).
#
# Installs what it needs if missing: systemd (systemd-analyze, systemd-sysusers) and dpkg from
# Debian, cargo-deb (pinned) from crates.io into the target folder. Each check counts as one test
# in scripts/test.sh's closing line (one `test result:` line in cargo's form); exit status 1 if
# any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
CARGO_DEB_VERSION=3.8.0

passed=0 failed=0 failures=()
check() { # name, command...
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "package check $name ... ok"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "package check $name ... FAILED"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
}
finish() {
  if ((failed)); then
    printf 'package check failures: %s\n' "${failures[*]}"
    echo "test result: FAILED. $passed passed; $failed failed; (scripts/package-check.sh)"
    exit 1
  fi
  echo "test result: ok. $passed passed; 0 failed; (scripts/package-check.sh)"
}

# --- tools ---------------------------------------------------------------------------------------
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-deb >/dev/null || need+=(dpkg)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo_deb="$target/tools/bin/cargo-deb"
if [ "$("$cargo_deb" --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "installing cargo-deb $CARGO_DEB_VERSION into $target/tools (about a minute)"
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" --root "$target/tools" cargo-deb
fi
bin="$target/debug/lienthong"
[ -x "$bin" ] || cargo build --locked --quiet

scratch=$(mktemp -d)
# Each check runs in a subshell (its output is captured): a node it started is named in a file.
cleanup() {
  [ -f "$scratch/serve.pid" ] && kill "$(cat "$scratch/serve.pid")" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

# --- the systemd unit ----------------------------------------------------------------------------
unit=packaging/lienthong.service
unit_settings() {
  local want missing=()
  for want in 'Type=exec' 'User=lienthong' 'Group=lienthong' \
    'ExecStart=/usr/bin/lienthong serve --config /etc/lienthong/lienthong.toml' \
    'StateDirectory=lienthong' 'ConfigurationDirectory=lienthong' 'Restart=on-failure' \
    'KillSignal=SIGTERM' 'UMask=0077' 'ReadWritePaths=/var/lib/lienthong' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
    'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' 'ProtectKernelLogs=yes' \
    'ProtectControlGroups=yes' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'RestrictNamespaces=yes' 'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' \
    'SystemCallFilter=@system-service' 'CapabilityBoundingSet=' 'WantedBy=multi-user.target'; do
    grep -qxF "$want" "$unit" || missing+=("$want")
  done
  grep -q '^LimitNOFILE=[0-9]' "$unit" || missing+=(LimitNOFILE)
  grep -q '^Type=notify' "$unit" && missing+=("Type=notify (the node does not speak sd_notify)")
  ((${#missing[@]} == 0)) || { printf 'missing or wrong in %s: %s\n' "$unit" "${missing[*]}"; return 1; }
}
check unit-settings unit_settings

# systemd-analyze verify needs the ExecStart binary: a copy of the unit pointing at the built one.
unit_verify() {
  mkdir -p "$scratch/unit"
  sed "s|^ExecStart=/usr/bin/lienthong |ExecStart=$bin |" "$unit" > "$scratch/unit/lienthong.service"
  local out
  out=$(systemd-analyze verify "$scratch/unit/lienthong.service" 2>&1) || { echo "$out"; return 1; }
  # It reports some problems (unknown settings, bad values) as warnings, exit status 0.
  if printf '%s\n' "$out" | grep -i 'lienthong.service'; then return 1; fi
}
check unit-verify unit_verify

# --- the Debian package --------------------------------------------------------------------------
deb_dir="$target/debian/package-check"
build_deb() {
  rm -rf "$deb_dir"
  CARGO_DEB="$cargo_deb" CARGO_TARGET_DIR="$target" packaging/build-deb.sh --profile dev --no-build --output "$deb_dir/" 2>&1
  ls "$deb_dir"/lienthong_*.deb
}
check deb-build build_deb
deb=$(ls "$deb_dir"/lienthong_*.deb 2>/dev/null | head -1)

deb_info() {
  local info version
  info=$(dpkg-deb --info "$deb") || return 1
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  local want missing=()
  for want in 'Package: lienthong' "Version: $version-1" 'Section: net' 'Priority: optional' \
    'Maintainer: ' 'Depends: .*libc6' 'Depends: .*systemd | systemd-sysusers' 'Architecture: ' ' postinst' ' prerm' ' postrm' ' conffiles'; do
    printf '%s\n' "$info" | grep -q "$want" || missing+=("$want")
  done
  local ctl="$scratch/control"
  dpkg-deb -e "$deb" "$ctl" || return 1
  grep -qxF /etc/lienthong/lienthong.toml "$ctl/conffiles" || missing+=("conffile /etc/lienthong/lienthong.toml")
  grep -q 'systemd-sysusers' "$ctl/postinst" || missing+=("postinst: systemd-sysusers")
  grep -q 'deb-systemd-helper' "$ctl/postinst" || missing+=("postinst: the unit wired by cargo-deb")
  grep -q '#DEBHELPER#' "$ctl/postinst" && missing+=("postinst: #DEBHELPER# left unreplaced")
  # The user exists before the configuration is given to its group.
  local users chgrp
  users=$(grep -n 'systemd-sysusers' "$ctl/postinst" | head -1 | cut -d: -f1)
  chgrp=$(grep -n 'chgrp lienthong' "$ctl/postinst" | head -1 | cut -d: -f1)
  [ -n "$users" ] && [ -n "$chgrp" ] && [ "$users" -lt "$chgrp" ] || missing+=("postinst: sysusers before chgrp")
  local s
  for s in postinst prerm postrm; do sh -n "$ctl/$s" || missing+=("$s: shell syntax"); done
  ((${#missing[@]} == 0)) || { printf '%s\n' "$info"; printf 'missing: %s\n' "${missing[*]}"; return 1; }
}
check deb-info deb_info

deb_contents() {
  local contents want missing=()
  contents=$(dpkg-deb --contents "$deb") || return 1
  for want in ./usr/bin/lienthong ./usr/lib/systemd/system/lienthong.service \
    ./etc/lienthong/lienthong.toml ./usr/lib/sysusers.d/lienthong.conf \
    ./usr/share/doc/lienthong/README.md ./usr/share/doc/lienthong/copyright \
    ./usr/share/doc/lienthong/examples/gialai.toml ./usr/share/man/man1/lienthong.1.gz \
    ./usr/share/man/man1/lienthong-send.1.gz ./usr/share/man/man1/lienthong-admin-deliveries-list.1.gz \
    ./usr/share/bash-completion/completions/lienthong ./usr/share/zsh/vendor-completions/_lienthong \
    ./usr/share/fish/vendor_completions.d/lienthong.fish; do
    printf '%s\n' "$contents" | grep -q " $want\$" || missing+=("$want")
  done
  printf '%s\n' "$contents" | grep -q '^-rwxr-xr-x 0/0 .* ./usr/bin/lienthong$' \
    || missing+=("usr/bin/lienthong 0755 root")
  printf '%s\n' "$contents" | grep -q '^-rw-r--r-- 0/0 .* ./etc/lienthong/lienthong.toml$' \
    || missing+=("etc/lienthong/lienthong.toml 0644 root")
  ((${#missing[@]} == 0)) || { printf '%s\n' "$contents"; printf 'missing: %s\n' "${missing[*]}"; return 1; }
}
check deb-contents deb_contents

# --- installed into a scratch root -----------------------------------------------------------------
root="$scratch/root"
unpacked() {
  dpkg-deb -x "$deb" "$root" || return 1
  cmp packaging/lienthong.service "$root/usr/lib/systemd/system/lienthong.service" &&
    cmp packaging/lienthong.toml "$root/etc/lienthong/lienthong.toml" &&
    cmp packaging/lienthong.sysusers "$root/usr/lib/sysusers.d/lienthong.conf" || return 1
  # The sysusers.d line creates the user, as postinst does on a real system.
  systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/lienthong.conf" &&
    grep -q '^lienthong:x:[0-9]*:[0-9]*:.*:/var/lib/lienthong:' "$root/etc/passwd"
}
check installed-files unpacked

installed_version() {
  local out want
  out=$("$root/usr/bin/lienthong" --version) || return 1
  want="lienthong $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
  [ "$out" = "$want" ] || { echo "--version printed '$out', expected '$want'"; return 1; }
}
check installed-version installed_version

# The packaged configuration, as an operator fills it in: the test PKI's Sở TT&TT Gia Lai and
# node certificate in place of the placeholders, the store and the ports moved into the scratch
# root (port 0: the node writes what it bound to --ready-file).
installed_serve() {
  local etc="$root/etc/lienthong" var="$root/var/lib/lienthong" ready="$scratch/ready"
  mkdir -p "$etc/certs/trust" "$var"
  cp certs/test-only/root-ca.cert.pem "$etc/certs/trust/"
  cp certs/test-only/node-gialai.cert.pem "$etc/certs/node.cert.pem"
  cp certs/test-only/node-gialai.key.pem "$etc/certs/node.key.pem"
  cp certs/test-only/stttt-gialai.cert.pem "$etc/certs/agency.cert.pem"
  cp certs/test-only/stttt-gialai.key.pem "$etc/certs/agency.key.pem"
  sed -e "s|/etc/lienthong/|$etc/|g" -e "s|/var/lib/lienthong/|$var/|g" \
    -e 's|^listen = .*|listen = "127.0.0.1:0"|' -e 's|^peer_listen = .*|peer_listen = "127.0.0.1:0"|' \
    -e 's|^code = "000.00.00.H00" .*|code = "000.00.05.H21"|' \
    -e 's|^name = "Tên cơ quan" .*|name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"|' \
    "$etc/lienthong.toml" > "$scratch/lienthong.toml"
  grep -q '^code = "000.00.05.H21"' "$scratch/lienthong.toml" || { echo "placeholder agency code not found"; return 1; }
  "$root/usr/bin/lienthong" serve --config "$scratch/lienthong.toml" --ready-file "$ready" \
    > "$scratch/serve.out" 2> "$scratch/serve.log" &
  local pid=$!
  echo "$pid" > "$scratch/serve.pid"
  # Until it has bound both listeners or exited (the bound is only for a node that hangs).
  local i
  for i in $(seq 1 600); do
    [ -f "$ready" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -f "$ready" ] || { echo "the node did not start:"; cat "$scratch/serve.log"; return 1; }
  grep -q '^peer_listen=127.0.0.1:' "$ready" || { echo "no peer listener"; cat "$ready"; return 1; }
  local port answer
  port=$(sed -n 's/^listen=127.0.0.1:\([0-9]*\)$/\1/p' "$ready")
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  answer=$(head -1 <&3)
  exec 3<&-
  case "$answer" in "HTTP/1.1 200"*) ;; *) echo "GET /healthz: $answer"; return 1 ;; esac
  [ -f "$var/node.db" ] || { echo "no store at $var/node.db"; return 1; }
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  rm -f "$scratch/serve.pid"
  [ "$rc" = 0 ] || { echo "exit status $rc after SIGTERM"; cat "$scratch/serve.log"; return 1; }
}
check installed-serve installed_serve

finish
