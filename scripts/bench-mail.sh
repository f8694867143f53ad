#!/usr/bin/env bash
# The mail channel's figures (README, Performance): fresh mail servers on loopback
# (scripts/mail-harness.sh: Dovecot and the aiosmtpd relay), `lienthong bench --mail-env` against
# them, then the servers stopped — whatever happens.
#
#   scripts/bench-mail.sh [BENCH ARGS...]     e.g. --documents 2000 --concurrency 64 --json
#
# The binary is $LIENTHONG_BIN, else target/release/lienthong (`cargo build --release` first).
# With --keep-servers the servers keep running afterwards (their DIR is printed) — for a look
# at the mailboxes; `scripts/mail-harness.sh stop DIR` stops them.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${LIENTHONG_BIN:-$HERE/../target/release/lienthong}
[ -x "$BIN" ] || {
  echo "bench-mail: $BIN not found: run cargo build --release (or set LIENTHONG_BIN)" >&2
  exit 1
}
keep=""
args=()
for a in "$@"; do
  if [ "$a" = --keep-servers ]; then keep=1; else args+=("$a"); fi
done

# Short, under /tmp: Dovecot's socket paths must stay under 108 bytes.
D=$(mktemp -d -t mh.XXXXXX)
finish() {
  if [ -n "$keep" ]; then
    echo "bench-mail: the mail servers keep running in $D (env: $D/env; stop: $HERE/mail-harness.sh stop $D)" >&2
  else
    "$HERE/mail-harness.sh" stop "$D" || true
    rm -rf "$D"
  fi
}
trap finish EXIT
"$HERE/mail-harness.sh" start "$D" >/dev/null
"$BIN" bench --mail-env "$D/env" "${args[@]}"
