#!/usr/bin/env bash
# A Gia Lai department sends a signed dispatch to Nghệ An, and Nghệ An answers "registered" (03):
# build → sign → verify (ours and xmlsec1's) → inspect → extract → status → sign → verify.
# Uses the committed TEST PKI (certs/test-only): never trust it outside tests and demos.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/lienthong"
pki=certs/test-only
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

printf '%%PDF-1.4\n%% Công văn số 125/STTTT-CĐS (demo)\n%%%%EOF\n' > "$work/Công văn 125.pdf"
printf 'Phụ lục: danh sách đơn vị tham gia thử nghiệm\n' > "$work/Phụ lục.txt"

step "Sở TT&TT Gia Lai builds a dispatch to UBND tỉnh Nghệ An"
"$bin" package new \
  --from 000.00.05.H21 --from-name "Sở Thông tin và Truyền thông tỉnh Gia Lai" \
  --to 000.00.00.H41 --to-name "Ủy ban nhân dân tỉnh Nghệ An" \
  --number 125 --notation STTTT-CĐS \
  --subject "V/v thử nghiệm liên thông văn bản điện tử giữa hai tỉnh" \
  --signer "Nguyễn Văn Ánh" --competence "KT. GIÁM ĐỐC" --position "Phó Giám đốc" \
  --attach "$work/Công văn 125.pdf" --attach "$work/Phụ lục.txt" \
  -o "$work/dispatch.edxml"

step "…signs it with the department's key"
"$bin" sign --key $pki/stttt-gialai.key.pem --cert $pki/stttt-gialai.cert.pem --chain $pki/chain.pem \
  "$work/dispatch.edxml" -o "$work/dispatch.signed.edxml"

step "Nghệ An verifies it (lienthong, then xmlsec1 if installed)"
"$bin" verify --trust $pki/root-ca.cert.pem "$work/dispatch.signed.edxml"
if command -v xmlsec1 >/dev/null; then
  xmlsec1 --verify --trusted-pem $pki/root-ca.cert.pem "$work/dispatch.signed.edxml" 2>&1 | head -1
fi

step "…reads it and takes the files out"
"$bin" inspect "$work/dispatch.signed.edxml"
"$bin" extract "$work/dispatch.signed.edxml" -d "$work/received"

step "…answers 03 (registered), signed with its own key"
"$bin" status new --code 03 --from 000.00.00.H41 --from-name "Ủy ban nhân dân tỉnh Nghệ An" \
  --for "$work/dispatch.signed.edxml" --description "Đã vào sổ văn bản đến" -o "$work/status.edxml"
"$bin" sign --key $pki/ubnd-nghean.key.pem --cert $pki/ubnd-nghean.cert.pem --chain $pki/chain.pem \
  "$work/status.edxml" -o "$work/status.signed.edxml"
"$bin" verify --trust $pki/root-ca.cert.pem "$work/status.signed.edxml"

step "A forged copy (one word of the subject changed) is refused"
sed 's/thử nghiệm/chính thức/' "$work/dispatch.signed.edxml" > "$work/forged.edxml"
if "$bin" verify --trust $pki/root-ca.cert.pem "$work/forged.edxml"; then
  echo "forgery accepted: this is a bug" >&2
  exit 1
fi
echo "demo finished"
