#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests use, then runs them.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components the tests compare against (never imitations):
#   xmlsec1        independent XML-DSig implementation (interop, both directions)
#   libxml2-utils  xmllint: reference C14N and XSD validation
#   openssl        the test PKI
need=()
command -v xmlsec1 >/dev/null || need+=(xmlsec1)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
# Doc tests are not part of --all-targets.
cargo test --locked --doc
