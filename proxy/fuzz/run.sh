#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ on stable Rust (cargo-afl), each target
# for a bounded time. Installs cargo-afl and builds AFL++ when missing.
#
#   proxy/fuzz/run.sh [target...]      (default: every target)
#   FUZZ_SECONDS=600 proxy/fuzz/run.sh stream
#
# Corpora and findings stay in target/fuzz/<target>/ (runs resume where
# the last stopped). A crash makes the script fail and prints the inputs:
# replay one with `target/afl/release/asg-afl <target> < file`, fix, and
# add it to proxy/fuzz/regressions/<target>/ (replayed by `make test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
ALL="sse stream dialect redact_json shell decode body_decode policy front ws"
TARGETS=${*:-$ALL}

command -v cargo-afl >/dev/null || cargo install cargo-afl --locked
# Builds AFL++ once per toolchain; says so (and fails) when already built.
if ! out=$(cargo afl config --build 2>&1); then
  grep -q "already built" <<<"$out" || { echo "$out"; exit 1; }
fi

# Instrumented build in its own target folder (other flags than the usual build).
CARGO_TARGET_DIR=target/afl cargo afl build --release --features afl -p asg-fuzz --bin asg-afl
cargo build -q -p asg-fuzz --bin asg-fuzz-seeds
HARNESS=target/afl/release/asg-afl

failed=0
for t in $TARGETS; do
  dir=target/fuzz/$t
  target/debug/asg-fuzz-seeds "$t" "$dir/in" >/dev/null
  echo "== $t: ${SECONDS_PER_TARGET} s"
  # Not interactive; the machine's core_pattern and CPU governor are left alone.
  AFL_NO_UI=1 AFL_AUTORESUME=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_NO_AFFINITY=1 \
    cargo afl fuzz -i "$dir/in" -o "$dir/out" -x proxy/fuzz/dict/asg.dict -t 5000 -m none \
      -V "$SECONDS_PER_TARGET" -- "$HARNESS" "$t" > "$dir/afl.log" 2>&1 || true
  stats=$dir/out/default/fuzzer_stats
  if [ -f "$stats" ]; then
    awk -F' *: ' '/^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time|bitmap_cvg)/ {printf "   %s: %s\n", $1, $2}' "$stats"
  else
    echo "   afl-fuzz did not start; see $dir/afl.log"; tail -5 "$dir/afl.log"; failed=1
  fi
  crashes=$(find "$dir/out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
  hangs=$(find "$dir/out/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
  if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    echo "   FOUND: $crashes crash(es), $hangs hang(s) in $dir/out/default/{crashes,hangs}"
    failed=1
  fi
done
exit $failed
