#!/usr/bin/env bash
# TEST ONLY — issues the node TLS certificates of the test PKI (mutual TLS between nodes) with the
# existing `openssl ca` databases. Makes only what is missing: never touches the CAs or the
# agency certificates (other tests and signed fixtures depend on them). make-test-pki.sh runs it
# at its end; run it alone to add the node certificates to an existing PKI:
#
#   certs/test-only/make-node-tls.sh
#
# Outputs (EC P-256 keys, PKCS#8; 10 years; EKU serverAuth + clientAuth; profile v3_node_tls):
#   node-gialai.{key,cert}.pem   issuing CA, SAN DNS:gialai.node.lienthong.test, IP:127.0.0.1
#   node-nghean.{key,cert}.pem   issuing CA, SAN DNS:nghean.node.lienthong.test, IP:127.0.0.1
#   node-rogue.{key,cert}.pem    ROGUE root, claims gialai.node.lienthong.test (the unknown-CA case)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
OPENSSL=${OPENSSL:-openssl}
CNF=openssl.cnf
mkdir -p ca/csr-node

# node NAME CA_SECTION DNS
node() {
  local name=$1 ca=$2 dns=$3
  if [ -e "$name.cert.pem" ]; then
    printf '  %s: exists, kept\n' "$name" >&2
    return 0
  fi
  printf '  %s\n' "$name" >&2
  # The node profile, with this node's SAN, in its own extension file: openssl.cnf stays free of
  # environment variables (every other use of it would need them set).
  # EKU serverAuth + clientAuth only: a node certificate is never a document signer, and an agency
  # signing certificate (document signing + emailProtection) is refused as a TLS client.
  cat > "ca/csr-node/$name.ext" <<EXT
[ v3_node_tls ]
basicConstraints        = critical, CA:FALSE
keyUsage                = critical, digitalSignature, keyEncipherment
extendedKeyUsage        = serverAuth, clientAuth
subjectAltName          = DNS:$dns, IP:127.0.0.1
subjectKeyIdentifier    = hash
authorityKeyIdentifier  = keyid:always
EXT
  "$OPENSSL" genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key.pem"
  "$OPENSSL" req -new -config "$CNF" -utf8 -key "$name.key.pem" \
    -subj "/C=VN/O=Lienthong TEST PKI/OU=Nodes/CN=$dns" -out "ca/csr-node/$name.csr"
  "$OPENSSL" ca -batch -notext -config "$CNF" -name "$ca" \
    -extfile "ca/csr-node/$name.ext" -extensions v3_node_tls -days 3653 -in "ca/csr-node/$name.csr" -out "$name.cert.pem" \
    2>"ca/csr-node/$name.log" || {
    cat "ca/csr-node/$name.log" >&2
    return 1
  }
}

printf 'node TLS certificates\n' >&2
node node-gialai ca_issuing gialai.node.lienthong.test
node node-nghean ca_issuing nghean.node.lienthong.test
node node-rogue ca_rogue gialai.node.lienthong.test
"$OPENSSL" verify -CAfile root-ca.cert.pem -untrusted chain.pem -purpose sslclient \
  node-gialai.cert.pem node-nghean.cert.pem >&2
"$OPENSSL" verify -CAfile root-ca.cert.pem -untrusted chain.pem -purpose sslserver \
  node-gialai.cert.pem node-nghean.cert.pem >&2
rm -rf ca/csr-node
