#!/usr/bin/env bash
# Where each node's CPU goes in the 10 KB closed loop of `lienthong bench`: samples both node
# processes with `perf record` (call graphs from DWARF) while the bench runs, then splits each
# node's samples into phases, every sample counted once (the first phase in the list below whose
# pattern matches any frame of its stack). This is the profile the README's Performance section
# quotes; run it on the machine whose figures you want explained.
#
# Usage: scripts/profile.sh [SECONDS_PER_NODE] [OUT_DIR]     (defaults: 3, a new temporary folder)
# Needs perf (Debian: linux-perf, installed here when missing and run as root) and the rights to
# profile other processes (perf_event_paranoid ≤ 1, set here when run as root).
set -euo pipefail
secs=${1:-3}
out=${2:-$(mktemp -d /tmp/lienthong-profile.XXXXXX)}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"

if ! command -v perf >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
  else
    echo "perf is not installed (Debian: apt-get install linux-perf)" >&2
    exit 2
  fi
fi
if [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo 1 > /proc/sys/kernel/perf_event_paranoid
  else
    echo "perf_event_paranoid > 1: run as root or lower it" >&2
    exit 2
  fi
fi

# The shipped build (fat LTO, Cargo.toml [profile.dist]), the one the README's figures are of.
cargo build --profile dist --quiet
bin="${CARGO_TARGET_DIR:-$root/target}/dist/lienthong"

# Enough documents to outlast the warm-up and both recordings at any plausible rate.
"$bin" bench --documents 60000 --concurrency 64 --openssl-seconds 0 --dir "$out/bench" \
  > "$out/bench.txt" 2>&1 &
bench=$!
pid_of() { pgrep -f -- "--config $out/bench/$1.toml" || true; }
# The bench's nodes are processes of their own: a killed bench leaves them running.
stop() {
  # shellcheck disable=SC2046 # one PID per word
  kill "$bench" $(pid_of sender) $(pid_of receiver) 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 200); do
  if [ -n "$(pid_of sender)" ] && grep -q "sending 60000" "$out/bench.txt" 2>/dev/null; then break; fi
  sleep 0.1
done
[ -n "$(pid_of sender)" ] || { echo "the bench did not start:" >&2; cat "$out/bench.txt" >&2; exit 1; }
sleep 2 # past the first seconds of the loop

for node in sender receiver; do
  pid=$(pid_of $node)
  [ -n "$pid" ] || { echo "the $node node is gone:" >&2; cat "$out/bench.txt" >&2; exit 1; }
  perf record -q -F 999 -g --call-graph dwarf,16384 -p "$pid" -o "$out/$node.data" -- sleep "$secs"
done
stop

# name|pattern (awk regular expressions over the frames of one stack, leaf to root)
phases='RSA private-key operations (signing)|rsa_default_private_transform
signing the package or receipt (XML, c14n, digest)|lienthong::dsig::sign::|lienthong::edxml::writer|lienthong::edxml::attachment|lienthong::node::receipt
verifying a package or receipt (parse, c14n, path, RSA verify)|lienthong::verify::verify_package|lienthong::dsig::verify::
revocation check and sender binding|lienthong::revocation::|lienthong::node::registry::
SQLite itself (statements, WAL, checkpoints)|sqlite3|walIndex|pager
store: driver and writer threads (hand-offs, rows, binding)|^(sqlx-sqlite-wor|store-writer)
HTTP, TLS and the rest of request handling (clerk API, peer push and endpoint)|hyper::|rustls::|axum::|reqwest::|h2::|aes_gcm|gcm_
JSON, audit records, the rest of the node|lienthong::
runtime, allocator, kernel (not under any of the above)|.'

for node in sender receiver; do
  echo "== $node: share of its CPU samples, $secs s of the closed loop"
  perf script -i "$out/$node.data" 2>/dev/null | awk -v phases="$phases" '
    BEGIN { n = split(phases, lines, "\n")
            for (i = 1; i <= n; i++) { k = index(lines[i], "|"); name[i] = substr(lines[i], 1, k - 1)
                                       pat[i] = substr(lines[i], k + 1) } }
    function flush() { if (stack == "") return
      for (i = 1; i <= n; i++) if (stack ~ pat[i]) { hits[i]++; total++; break }
      stack = "" }
    /^[^ \t]/ { flush(); stack = $1 "\n"; next }
    /^[ \t]*$/ { flush(); next }
    { stack = stack $2 "\n" }
    END { flush(); if (total == 0) { print "  no samples"; exit 1 }
          for (i = 1; i <= n; i++) printf "  %5.1f %%  %s\n", 100 * hits[i] / total, name[i]
          printf "  (%d samples)\n", total }'
done
echo "perf data and the bench's folder: $out"
