#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that take outside bytes (fuzz/, README "Fuzzing").
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s each, every target
#
# libFuzzer (libfuzzer-sys, built from source by the cc crate: needs a C++ compiler) on stable
# rustc: the sanitizer-coverage instrumentation is asked for with -Cpasses=sancov-module and LLVM
# options, which stable accepts (cargo-fuzz's -Zsanitizer needs nightly; no AddressSanitizer
# here, which Rust code without `unsafe` of its own does not need). Release optimisation with
# debug assertions and overflow checks on (fuzz/Cargo.toml).
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET, replayed first: the crash
# inputs kept there as regression seeds run on every call) and writes what it finds to a working
# corpus under the build directory, so the committed corpus only changes by hand. Any crash,
# failed assertion, leak-sized allocation or input slower than the per-input timeout fails the
# run: the script names the target and the saved input, and exits non-zero after every target
# has run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all=(xml_parse read attachment verify_package clerk_multipart)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
triple=$(rustc -vV | sed -n 's/^host: //p')
# --cfg fuzzing as cargo-fuzz sets it; --target keeps build scripts and proc macros (which run
# on the host during the build) uninstrumented.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=3 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
start=$(date +%s)
cargo build --locked --release --manifest-path fuzz/Cargo.toml --target "$triple" --bins
echo "fuzz: build took $(($(date +%s) - start)) s"

bin="$CARGO_TARGET_DIR/$triple/release"
failed=()
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$t"
  work="$CARGO_TARGET_DIR/corpus/$t"
  out="$CARGO_TARGET_DIR/artifacts/$t"
  log="$CARGO_TARGET_DIR/logs/$t.log"
  mkdir -p "$work" "$out" "$(dirname "$log")"
  # -timeout: generous, so a loaded machine does not fail the run; a quadratic blow-up on a
  # small input still passes it. -rss_limit_mb: a zip bomb or an unbounded allocation.
  if "$bin/$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" "$work" "$seeds" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t: ${seconds} s, ${execs:-?} inputs, ${cov:-cov: ?}, corpus $(find "$work" -type f | wc -l) (+$(find "$seeds" -type f | wc -l) seeds), no crash"
  else
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "fuzz: $t: CRASHED; input: ${input:-(none saved, see $log)}"
    grep -v -E '^#[0-9]+|^INFO:|^\s*$' "$log" | head -60
    echo "fuzz: full log: $log; replay: $bin/$t ${input:-INPUT}"
    failed+=("$t")
  fi
done
# Cargo's own result line, so scripts/test.sh counts each target as a test.
passed=$((${#targets[@]} - ${#failed[@]}))
if ((${#failed[@]})); then
  echo "test result: FAILED. $passed passed; ${#failed[@]} failed; 0 ignored (fuzz: ${failed[*]})"
  exit 1
fi
echo "test result: ok. $passed passed; 0 failed; 0 ignored (fuzz: ${targets[*]}, ${seconds} s each)"
