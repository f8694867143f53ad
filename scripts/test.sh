#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests use, then runs them.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the run's time goes: seconds since the start at the end of each step, printed last.
step_times=()
mark() { step_times+=("$(printf '%6d s  %s' "$SECONDS" "$1")"); }

# Real components the tests compare against (never imitations):
#   xmlsec1        independent XML-DSig implementation (interop, both directions)
#   libxml2-utils  xmllint: reference C14N and XSD validation
#   openssl        the test PKI, CRLs (openssl ca -gencrl), the OCSP responder (openssl ocsp) and
#                  the RSA ceiling of lienthong bench (openssl speed)
#   python3        independent base64 + zipfile decoding of attachments (tests/edxml_writer.rs,
#                  tests/real_traffic_extract.rs)
#   python3-venv   a virtual environment for openapi-spec-validator (below)
#   g++            libFuzzer, which libfuzzer-sys compiles from source (scripts/fuzz.sh)
#   dovecot-imapd, dovecot-lmtpd, python3-aiosmtpd
#                  real mail servers on loopback for the mail bridge (tests/common/mail.rs):
#                  Dovecot (IMAP, IMAPS, LMTP) and aiosmtpd (SMTP STARTTLS/implicit TLS + AUTH)
#   postgresql-client, postgresql
#                  pg_isready and psql (finding the PostgreSQL of the store tests' second run, and
#                  dropping the databases an earlier run left), and the server's binaries (initdb,
#                  pg_ctl, pg_basebackup) for the tests that start servers of their own (failover).
#                  The server the store tests use is the machine's: 127.0.0.1:5432, trust
#                  authentication, database `test` (CI provides it; see "PostgreSQL" below).
#   chromium, chromium-driver, nodejs, npm
#                  the web console's browser tests (tests/console_browser.rs): Debian's Chromium,
#                  headless, driven by playwright-core; axe-core; the OpenID provider of the
#                  single sign-on tests (oidc-provider). The npm packages are pinned in
#                  tests/console/package-lock.json and installed below with `npm ci`.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v xmlsec1 >/dev/null || need+=(xmlsec1)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)
command -v c++ >/dev/null || need+=(g++)
mail_need=()
[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] || mail_need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || mail_need+=(dovecot-lmtpd)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || mail_need+=(python3-aiosmtpd)
need+=("${mail_need[@]}")
pg_need=()
command -v pg_isready >/dev/null && command -v psql >/dev/null || pg_need+=(postgresql-client)
# Debian keeps the server's binaries in /usr/lib/postgresql/<version>/bin, off the PATH.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
command -v initdb >/dev/null || [ -x "$pg_bin/initdb" ] || pg_need+=(postgresql)
need+=("${pg_need[@]}")
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  # The mail packages' maintainer scripts start the system Dovecot on 143/993; the tests run
  # their own instances on free loopback ports and want no system one. A policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d
  # from starting anything during the install; it is removed again if this script put it there.
  policy=/usr/sbin/policy-rc.d
  own_policy=""
  # (The postgresql package would likewise start a cluster of its own on 5432.)
  if ((${#mail_need[@]} + ${#pg_need[@]})) && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  install_rc=0
  { "${as_root[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"; } ||
    install_rc=$?
  [ -z "$own_policy" ] || "${as_root[@]}" rm -f "$policy"
  ((install_rc == 0)) || exit "$install_rc"
  # With systemd, also keep the services off for later boots (and stop them if anything did
  # start them): a system Dovecot or Postfix has no business running on a test machine.
  if ((${#mail_need[@]})) && [ -d /run/systemd/system ]; then
    for unit in dovecot.service dovecot.socket postfix.service; do
      if systemctl list-unit-files "$unit" >/dev/null 2>&1; then
        "${as_root[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

# oidc-provider 9 needs Node.js 20 or later (Debian 12's own nodejs is 18): say so before the
# console's single sign-on tests fail on it.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "*** Node.js $node_major found; the console's OpenID provider tests need Node.js 20 or later ***"
fi
# The console tests' npm packages, exactly as locked (playwright-core drives /usr/bin/chromium;
# it never downloads a browser of its own).
npm ci --prefix tests/console --no-audit --no-fund --loglevel=error
mark "installs (apt, npm)"
# The console's screenshots at 1366×768 land where the README shows them.
export LIENTHONG_CONSOLE_SCREENSHOTS="$PWD/docs/console/screenshots"

# PostgreSQL: the server binaries on the PATH (they may have been installed just above).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
command -v initdb >/dev/null || [ -z "$pg_bin" ] || export PATH="$PATH:$pg_bin"
# The store and node tests run a second time on PostgreSQL (below) when one answers on
# 127.0.0.1:5432 (or LIENTHONG_TEST_POSTGRES names another); each test creates its own database
# lt_t_<pid>_<n>_<random> there (tests/common/store.rs). Those of earlier runs are dropped here.
skipped_pg="${CARGO_TARGET_DIR:-target}/skipped-postgres.txt"
rm -f "$skipped_pg"
if [ -z "${LIENTHONG_TEST_POSTGRES:-}" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export LIENTHONG_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test
fi
if [ -n "${LIENTHONG_TEST_POSTGRES:-}" ]; then
  psql "$LIENTHONG_TEST_POSTGRES" -XAtqc "SELECT datname FROM pg_database WHERE datname LIKE 'lt\_t\_%'" |
    while read -r db; do
      psql "$LIENTHONG_TEST_POSTGRES" -Xqc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done || echo "could not drop the test databases of earlier runs on $LIENTHONG_TEST_POSTGRES"
fi

# schemas/openapi.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator, PyPI, the pinned
# versions of scripts/openapi-requirements.txt, in a virtual environment beside the build). The
# test suite then checks every answer of the node tests against it (tests/common/openapi.rs).
venv="${CARGO_TARGET_DIR:-target}/openapi-venv"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/openapi-requirements.txt
fi
"$venv/bin/openapi-spec-validator" schemas/openapi.yaml
mark "openapi-spec-validator"

# From here on no step stops the run: each failure is remembered, the suite still runs, and the
# closing lines say what failed (the exit status is non-zero if anything did).
status=0
failed_steps=()
cargo fmt --all -- --check || { status=1; failed_steps+=("cargo fmt --check"); }
cargo fmt --manifest-path fuzz/Cargo.toml -- --check || { status=1; failed_steps+=("cargo fmt --check (fuzz)"); }
cargo clippy --locked --all-targets -- -D warnings || { status=1; failed_steps+=("cargo clippy"); }
mark "cargo fmt --check, cargo clippy"
# The fuzz crate has its own Cargo.lock, which a new dependency of the library leaves stale:
# said here, in seconds, rather than by the fuzz build at the end of the run.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null ||
  { status=1; failed_steps+=("fuzz/Cargo.lock is stale (cargo metadata --manifest-path fuzz/Cargo.toml updates it)"); }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# "P passed, F failed" over cargo's result lines in a log.
totals() { # log
  awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
       END { printf "%d passed, %d failed", p, f }' "$1"
}
# A failing test binary must not stop the run before its closing line: every step's failure is
# remembered and the script exits non-zero at the end, after printing the true count.
# Doc tests are not part of --all-targets; run them first so the suite's own summary closes the run.
cargo test --locked --doc 2>&1 | tee "$log" || status=1
mark "doc tests"
cargo test --locked --no-fail-fast --all-targets 2>&1 | tee -a "$log" || status=1
mark "the whole suite on SQLite (build and run)"
# The store and node test suite again, on PostgreSQL: the test binaries whose stores come from
# tests/common/store.rs (LIENTHONG_TEST_BACKEND picks the backend). The tests named sqlite_…
# test SQLite's own things (WAL, read-only opening, package files) and are not run again.
# The node tests' spawned nodes take their store URL from there too (tests/common/nodes.rs).
pg_suite=(store_sqlite store_registry store_mail audit_chain audit_cli node_local node_expiry node_receipts
  node_integration node_claims node_channel node_ingest node_registry node_replica_numbering http_api
  api_errors api_contract reader_warnings_stored peer_breaker cli_registry mail_api mail_bridge)
sqlite_totals=$(totals "$log")
pg_totals="not run"
if [ -n "${LIENTHONG_TEST_POSTGRES:-}" ]; then
  pg_log=$(mktemp)
  pg_args=()
  for t in "${pg_suite[@]}"; do pg_args+=(--test "$t"); done
  LIENTHONG_TEST_BACKEND=postgres cargo test --locked --no-fail-fast "${pg_args[@]}" -- --skip sqlite_ 2>&1 |
    tee "$pg_log" | tee -a "$log" || status=1
  pg_totals=$(totals "$pg_log")
  rm -f "$pg_log"
fi
mark "the store and node tests on PostgreSQL"
# The README's "run it" command, on the debug build the tests just made.
# Counted as one test in the closing line, in cargo's own form.
if LIENTHONG_PROFILE=debug examples/two-nodes/run.sh; then
  echo "test result: ok. 1 passed; 0 failed; (examples/two-nodes/run.sh)" | tee -a "$log"
else
  echo "test result: FAILED. 0 passed; 1 failed; (examples/two-nodes/run.sh)" | tee -a "$log"
  status=1
fi
# The README's mail demo, likewise: real Dovecot and aiosmtpd on loopback (scripts/mail-harness.sh,
# the packages installed above) and a node with [mail]; one test in the closing line.
if LIENTHONG_PROFILE=debug examples/mail/run.sh; then
  echo "test result: ok. 1 passed; 0 failed; (examples/mail/run.sh)" | tee -a "$log"
else
  echo "test result: FAILED. 0 passed; 1 failed; (examples/mail/run.sh)" | tee -a "$log"
  status=1
  failed_steps+=("examples/mail/run.sh")
fi
mark "examples/two-nodes/run.sh, examples/mail/run.sh"
# What an operator installs (README, Installing a node): the systemd unit (systemd-analyze
# verify), the .deb (cargo-deb, from the debug build above: dpkg-deb --info/--contents) and its
# binary unpacked into a scratch root, started on the packaged configuration. Each of its checks
# counts as one test in the closing line (it prints cargo's result line).
# A step that prints cargo's result lines itself; one that fails before printing a failed result
# (it could not build, a tool was missing) counts as one failed test, so the closing line never
# says "0 failed" over a step that did not run.
counted_step() { # command...
  local out rc
  out=$(mktemp)
  "$@" 2>&1 | tee "$out" | tee -a "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    echo "$1: FAILED"
    status=1
    failed_steps+=("$1")
    grep -q '^test result: FAILED' "$out" ||
      echo "test result: FAILED. 0 passed; 1 failed; ($1 stopped before its result)" | tee -a "$log"
  fi
  rm -f "$out"
}
counted_step scripts/package-check.sh
mark "scripts/package-check.sh"
# Coverage-guided fuzzing of the parsers, a bounded time per target (README, Fuzzing): the
# committed seeds and regression inputs replay first, then new inputs for FUZZ_SECONDS each.
# Each target counts as one test in the closing line (fuzz.sh prints cargo's result line).
counted_step scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
mark "scripts/fuzz.sh"
# One closing line over every test binary (cargo prints a result line per binary). A binary
# that died without its result line (a signal, an abort) counts as one failed test: cargo names
# it with "error: test failed, to rerun pass …" like a binary whose tests failed.
# (Ignored tests are timing probes run by hand, e.g. the c14n throughput test.)
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     /^test result: FAILED/ { fb++ }
     /^error: test failed, to rerun pass/ { eb++ }
     END { if (eb > fb) { f += eb - fb; note = sprintf(" (%d binaries died without a result line)", eb - fb) }
           printf "tests: %d passed, %d failed%s\n", p, f, note; exit (f > 0) }' "$log" || status=1
# The real-traffic tests read third-party packages kept outside the repository (tests/real_traffic*.rs);
# without them those tests pass having checked nothing, so say so where it is seen.
corpus="${LIENTHONG_REAL_TRAFFIC:-../shared/real-traffic}"
[ -d "$corpus" ] || echo "*** SKIPPED: the real-traffic tests found no corpus at $corpus (set LIENTHONG_REAL_TRAFFIC) ***"
# The two backends' runs of the store and node tests, and what PostgreSQL did not test.
echo "tests on SQLite (the whole suite): $sqlite_totals"
echo "tests on PostgreSQL (${pg_suite[*]}): $pg_totals"
if [ -z "${LIENTHONG_TEST_POSTGRES:-}" ]; then
  echo "*******************************************************************************************"
  echo "*** SKIPPED: the store and node tests on PostgreSQL — nothing answers on 127.0.0.1:5432  ***"
  echo "*** and LIENTHONG_TEST_POSTGRES is not set: only SQLite was tested.                      ***"
  echo "*******************************************************************************************"
fi
if [ -s "$skipped_pg" ]; then
  echo "*******************************************************************************************"
  echo "*** SKIPPED for want of PostgreSQL ($(wc -l <"$skipped_pg") tests):"
  sed 's/^/***   /' "$skipped_pg"
  echo "*******************************************************************************************"
fi
echo "time: seconds since the start at the end of each step"
printf '%s\n' "${step_times[@]}"
if ((${#failed_steps[@]})); then
  printf 'failed steps: %s\n' "$(IFS=', '; echo "${failed_steps[*]}")"
fi
exit "$status"
