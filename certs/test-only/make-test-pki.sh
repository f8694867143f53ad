#!/usr/bin/env bash
# TEST ONLY — (re)generates the lienthong test PKI in this folder. Every key made here is public
# (it is committed); nothing issued by these CAs may ever be trusted outside tests.
#
# Usage:  certs/test-only/make-test-pki.sh          (from anywhere; needs openssl 3 on PATH,
#                                                    or OPENSSL=/path/to/openssl)
#
# Idempotent: deletes what it generated before (ca/, *.pem) and makes everything anew — new keys,
# new serials — so fixtures signed with the previous keys must be re-made after a run.
# openssl.cnf (the CA databases' configuration and the certificate profiles), README.md and this
# script are kept.
#
# Outputs (see README.md for the table):
#   root-ca.{key,cert}.pem       Lienthong TEST Root CA (the trust anchor)
#   issuing-ca.{key,cert}.pem    Lienthong TEST Issuing CA; chain.pem is a copy of its certificate
#   rogue-root.{key,cert}.pem    Lienthong TEST Rogue Root CA (NOT an anchor)
#   <name>.{key,cert}.pem        organisation signing certificates, good and bad
#   ca/{root,issuing,rogue}/     `openssl ca` databases (index.txt, serial, crlnumber, newcerts/)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
OPENSSL=${OPENSSL:-openssl}
CNF=openssl.cnf

log() { printf '%s\n' "$*" >&2; }

# --- clean ------------------------------------------------------------------------------------
rm -rf ca
rm -f ./*.pem

for ca in root issuing rogue; do
  mkdir -p "ca/$ca/newcerts"
  : >"ca/$ca/index.txt"
  # Random positive serials, so certificates from different runs never share a serial.
  "$OPENSSL" rand -hex 16 | sed 's/^./1/' >"ca/$ca/serial"
  echo 1000 >"ca/$ca/crlnumber"
done
mkdir -p ca/csr

# --- helpers ------------------------------------------------------------------------------------
# new_key NAME BITS: an unencrypted PKCS#8 RSA key in NAME.key.pem
new_key() {
  "$OPENSSL" genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1.key.pem"
}

# new_csr NAME SUBJECT: a request for NAME.key.pem, subject as UTF-8 strings
new_csr() {
  "$OPENSSL" req -new -config "$CNF" -utf8 -key "$1.key.pem" -subj "$2" -out "ca/csr/$1.csr"
}

# issue CA_SECTION NAME EXTENSIONS [extra openssl ca options…]: NAME.cert.pem from ca/csr/NAME.csr
issue() {
  local ca=$1 name=$2 ext=$3
  shift 3
  "$OPENSSL" ca -batch -notext -config "$CNF" -name "$ca" -extensions "$ext" \
    -in "ca/csr/$name.csr" -out "$name.cert.pem" "$@" 2>"ca/csr/$name.log" || {
    cat "ca/csr/$name.log" >&2
    return 1
  }
}

# org NAME BITS SUBJECT CA_SECTION EXTENSIONS [extra openssl ca options…]
org() {
  local name=$1 bits=$2 subject=$3
  shift 3
  log "  $name"
  new_key "$name" "$bits"
  new_csr "$name" "$subject"
  issue "$1" "$name" "${@:2}"
}

# Subjects: C, L, O, serialNumber, CN in DER order (RFC 4514 string: CN=…, serialNumber=…, O=…,
# L=…, C=VN). The agency code (OrganId, QCVN 102) is carried in the subject's serialNumber
# attribute (2.5.4.5), which lienthong::pki reads as `organ_id`.
subject() { # subject ORGAN_ID CN O L
  printf '/C=VN/L=%s/O=%s/serialNumber=%s/CN=%s' "$4" "$3" "$1" "$2"
}

UBND_GL="Ủy ban nhân dân tỉnh Gia Lai"
UBND_NA="Ủy ban nhân dân tỉnh Nghệ An"

# --- the CAs ------------------------------------------------------------------------------------
log "CAs"
new_key root-ca 3072
new_csr root-ca "/C=VN/O=Lienthong TEST PKI/CN=Lienthong TEST Root CA"
issue ca_root root-ca v3_root -selfsign -keyfile root-ca.key.pem -days 7305 # 20 years

new_key issuing-ca 3072
new_csr issuing-ca "/C=VN/O=Lienthong TEST PKI/CN=Lienthong TEST Issuing CA"
issue ca_root issuing-ca v3_issuing -days 6940 # 19 years
cp issuing-ca.cert.pem chain.pem

new_key rogue-root 2048
new_csr rogue-root "/C=VN/O=Rogue TEST PKI/CN=Lienthong TEST Rogue Root CA"
issue ca_rogue rogue-root v3_root -selfsign -keyfile rogue-root.key.pem -days 7305

# --- good organisation signing certificates (10 years) ------------------------------------------
log "organisation signing certificates"
org ubnd-gialai 2048 "$(subject 000.00.00.H21 "$UBND_GL" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_org_signing -days 3653
org stttt-gialai 2048 \
  "$(subject 000.00.05.H21 "Sở Thông tin và Truyền thông tỉnh Gia Lai" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_org_signing -days 3653
org sonv-gialai 2048 "$(subject 000.00.04.H21 "Sở Nội vụ tỉnh Gia Lai" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_org_signing -days 3653
org ubnd-nghean 2048 "$(subject 000.00.00.H41 "$UBND_NA" "$UBND_NA" "Nghệ An")" \
  ca_issuing v3_org_signing -days 3653

# --- bad ones: each differs from the signing profile in exactly one way ----------------------------
# (fictitious agency codes 000.00.9x.H21)
log "bad certificates"
# `expired` and `not-yet-valid` (000.00.91/92.H21) are issued at test time with dates relative to
# now (tests/common/timed.rs), not here.
# Directly under the root: the issuing CA's pathlen:0 plays no part, being a CA is its only fault.
org ca-as-signer 2048 "$(subject 000.00.93.H21 "TEST Đơn vị dùng chứng thư CA" "$UBND_GL" "Gia Lai")" \
  ca_root v3_ca_as_signer -days 3653
org wrong-key-usage 2048 \
  "$(subject 000.00.94.H21 "TEST Đơn vị sai key usage" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_wrong_key_usage -days 3653
org wrong-eku 2048 "$(subject 000.00.95.H21 "TEST Đơn vị sai EKU" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_wrong_eku -days 3653
# A forgery: the very subject of ubnd-gialai, from a root nobody trusts.
org untrusted 2048 "$(subject 000.00.00.H21 "$UBND_GL" "$UBND_GL" "Gia Lai")" \
  ca_rogue v3_org_signing -days 3653
# OpenSSL 3.0 signs with SHA-1 when asked (security levels govern verification and TLS, not ca).
org sha1-signed 2048 "$(subject 000.00.96.H21 "TEST Đơn vị ký SHA-1" "$UBND_GL" "Gia Lai")" \
  ca_issuing v3_org_signing -days 3653 -md sha1

# --- check ------------------------------------------------------------------------------------------
log "checks"
"$OPENSSL" verify -CAfile root-ca.cert.pem -untrusted chain.pem \
  ubnd-gialai.cert.pem stttt-gialai.cert.pem sonv-gialai.cert.pem ubnd-nghean.cert.pem >&2
grep -q 'Signature Algorithm: sha1WithRSAEncryption' \
  <("$OPENSSL" x509 -in sha1-signed.cert.pem -noout -text) ||
  { log "sha1-signed.cert.pem is not signed with SHA-1"; exit 1; }
rm -rf ca/csr
log "done: $(ls ./*.cert.pem | wc -l) certificates in $(pwd)"

# --- node TLS certificates (mutual TLS between nodes) -------------------------------------------
# A separate script so that they can be added to an existing PKI without regenerating it.
./make-node-tls.sh
