#!/usr/bin/env bash
# Two nodes on loopback: Gia Lai (Sở TT&TT 000.00.05.H21, Sở Nội vụ 000.00.04.H21) and Nghệ An
# (UBND tỉnh 000.00.00.H41). A Gia Lai clerk sends a dispatch with a PDF to Nghệ An; Gia Lai's node
# signs it and delivers it; Nghệ An's node answers with a signed receipt (01); Nghệ An's clerk
# registers it (03) and finishes it (06); both statuses arrive back in Gia Lai.
# Demo configuration and TEST PKI only. Usage: examples/two-nodes/run.sh [--keep]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

# Every tool this script calls, checked before anything is built or started.
missing=()
for tool in cargo python3 sed grep mktemp seq head cat cp mkdir rm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "run.sh needs: ${missing[*]} (not found on PATH)." >&2
  echo "  cargo: a Rust toolchain 1.95+ (https://rustup.rs); python3 reads the node's JSON answers" >&2
  echo "  (Debian/Ubuntu: apt-get install python3)." >&2
  exit 1
fi

# LIENTHONG_PROFILE=debug reuses the test build (the test suite runs this script that way).
# The release profile is Cargo's default optimisation (the shipped `dist` profile's fat LTO would
# take about 8 minutes more on a fresh clone); cargo shows its progress.
profile=${LIENTHONG_PROFILE:-release}
if [ "$profile" = release ]; then
  echo "building lienthong (first time: a few minutes)…"
  cargo build --release --locked
else
  cargo build --locked
fi
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/lienthong"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${1:-}" != "--keep" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap 'cleanup "${KEEP:-}"' EXIT
[ "${1:-}" = "--keep" ] && KEEP=--keep

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Each node gets its own folder: its config, its store, the certificates it needs.
for n in gialai nghean; do
  mkdir -p "$work/$n/certs"
  cp "$here/$n.toml" "$work/$n/"
  cp certs/test-only/{root-ca.cert.pem,chain.pem} "$work/$n/certs/"
done
cp certs/test-only/{stttt-gialai,sonv-gialai}.{key,cert}.pem "$work/gialai/certs/"
cp certs/test-only/ubnd-nghean.{key,cert}.pem "$work/nghean/certs/"
# Nghệ An's agency registry: the certificates allowed to sign for the Gia Lai agencies.
cp "$here/registry.toml" "$work/nghean/"
cp certs/test-only/stttt-gialai.cert.pem "$work/nghean/certs/"
# Node TLS identities (mutual TLS between the nodes' peer endpoints).
cp certs/test-only/node-gialai.{key,cert}.pem "$work/gialai/certs/"
cp certs/test-only/node-nghean.{key,cert}.pem "$work/nghean/certs/"

# Ports: the committed configurations name fixed ports (18440/18441 clerk, 18450/18451 peers) as
# an example; here every listener binds port 0 and the node writes what it bound to its
# --ready-file, so a node left running (or anything else) on those ports cannot collide. The two
# nodes name each other's peer port, a cycle: Nghệ An starts first, naming a port for Gia Lai's
# peer listener that this script picked free just before (the one residual window: if something
# takes it while Nghệ An starts, Gia Lai fails to bind it and the script stops, nothing is mixed
# up); Gia Lai starts second with Nghệ An's real ports.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
configure() { # name listen peer_listen peer_url
  sed -e "s|^listen = .*|listen = \"$2\"|" -e "s|^peer_listen = .*|peer_listen = \"$3\"|" \
    -e "s|^url = \"https://127.0.0.1:[0-9]*\"|url = \"$4\"|" "$here/$1.toml" > "$work/$1/$1.toml"
}
start() { # name
  "$bin" serve --config "$work/$1/$1.toml" --ready-file "$work/$1/ready" > "$work/$1/log.jsonl" 2>&1 &
  pids+=($!)
  # Until the node has bound both listeners (or exited); 60 s only bounds a node that hangs.
  for _ in $(seq 1 600); do
    [ -f "$work/$1/ready" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "node $1 did not start:"; cat "$work/$1/log.jsonl"; exit 1
}
bound() { # name key → the port
  sed -n "s|^$2=.*:\([0-9]*\)$|\1|p" "$work/$1/ready"
}
step "Nghệ An imports its agency registry (which certificates may sign for which Gia Lai agency)"
"$bin" registry import "$work/nghean/registry.toml" --config "$work/nghean/nghean.toml"
"$bin" registry list --config "$work/nghean/nghean.toml"

gl_peer=$(free_port)
configure nghean 127.0.0.1:0 127.0.0.1:0 "https://127.0.0.1:$gl_peer"
start nghean
configure gialai 127.0.0.1:0 "127.0.0.1:$gl_peer" "https://127.0.0.1:$(bound nghean peer_listen)"
start gialai
gl_clerk=$(bound gialai listen) na_clerk=$(bound nghean listen)
step "Started Gia Lai (clerk 127.0.0.1:$gl_clerk, peers mTLS :$gl_peer) and Nghệ An (clerk :$na_clerk, peers mTLS :$(bound nghean peer_listen))"

GL="--node http://127.0.0.1:$gl_clerk --token demo-token-stttt"
NA="--node http://127.0.0.1:$na_clerk --token demo-token-nghean"

printf '%%PDF-1.4\n%% Công văn số …/STTTT-CĐS (demo)\n%%%%EOF\n' > "$work/cong-van.pdf"

step "Sở TT&TT Gia Lai sends a dispatch to UBND tỉnh Nghệ An (the node assigns the number)"
sent=$("$bin" send $GL --json --to 000.00.00.H41 --notation STTTT-CĐS \
  --subject "V/v phối hợp triển khai liên thông văn bản điện tử" --signer "Nguyễn Văn Ánh" \
  --attach "$work/cong-van.pdf" --idempotency-key demo-1)
echo "$sent"
id=$(echo "$sent" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

wait_until() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 300); do # 60 s: only a bound for what would never happen
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what"; exit 1
}
delivered() { "$bin" sent show $GL --json "$id" | grep -q '"state": "delivered"'; }
step "Gia Lai's outbox delivers it; Nghệ An answers with a signed receipt (01)"
wait_until "delivery" delivered
"$bin" sent show $GL --json "$id" | python3 -c '
import json,sys
d = json.load(sys.stdin)
for x in d.get("deliveries", []):
    print("  to", x["recipient"], "->", x["state"], "after", x["attempts"], "attempt(s)")'

step "Nghệ An's clerk sees it in the inbox"
inbox=$("$bin" inbox list $NA --json)
echo "$inbox" | head -40
rid=$(echo "$inbox" | python3 -c 'import json,sys; v=json.load(sys.stdin); items=v["items"] if isinstance(v,dict) else v; print(items[0]["message"]["id"] if "message" in items[0] else items[0]["id"])')
"$bin" inbox package $NA "$rid" -o "$work/received.edxml"
"$bin" verify --trust certs/test-only/root-ca.cert.pem "$work/received.edxml"

step "…registers it (03) and finishes it (06)"
"$bin" inbox status $NA "$rid" --code 03 --description "Đã vào sổ văn bản đến"
"$bin" inbox status $NA "$rid" --code 06 --description "Đã xử lý xong"

has_06() { "$bin" sent show $GL --json "$id" | grep -q '"latest_status": "06"'; }
step "Both statuses arrive back in Gia Lai"
wait_until "status 06 in Gia Lai" has_06
"$bin" sent show $GL --json "$id" | python3 -c '
import json,sys
d = json.load(sys.stdin)
for x in d["deliveries"]:
    print("  %s: latest status %s" % (x["recipient"], x["latest_status"]))
    for s in x["history"]:
        print("    %s from %s: %s" % (s["code"], s["reporter"], s["description"]))'

step "Both audit chains verify"
"$bin" audit verify --store "sqlite://$work/gialai/gialai.db"
"$bin" audit verify --store "sqlite://$work/nghean/nghean.db"
echo "two-node example finished"
