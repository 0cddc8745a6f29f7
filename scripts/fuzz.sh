#!/usr/bin/env bash
# fuzz.sh [SECONDS_PER_TARGET]: build the libFuzzer targets of tests/fuzz/
# with clang, AddressSanitizer and UndefinedBehaviorSanitizer in
# build/fuzz, then run each one for a bounded time (default 20 s) over a
# copy of its checked-in seed corpus (tests/fuzz/corpus/<target>/, left
# untouched). Fails on any crash, leak, sanitizer report or broken
# invariant; the input that did it is kept in build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
BUILD=build/fuzz
JOBS=$(nproc 2>/dev/null || echo 2)
TARGETS=(fuzz_console_req fuzz_console_rep fuzz_gw_msg fuzz_eng_msg
         fuzz_event fuzz_store_rec)

echo "=== fuzz: build ($BUILD) ==="
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFBX_WERROR=ON -DFBX_FUZZ=ON \
  -DFBX_SANITIZER=asan+ubsan >/dev/null
cmake --build "$BUILD" --target fbx_fuzz -j "$JOBS"

# The checked-in seeds should be what gen_seeds writes today; a stale
# corpus still fuzzes, so this only warns.
fresh="$BUILD/seeds.new"
rm -rf "$fresh"
for t in "${TARGETS[@]}"; do mkdir -p "$fresh/$t"; done
"$BUILD/tests/fuzz/gen_seeds" "$fresh"
if ! diff -r -q tests/fuzz/corpus "$fresh" >/dev/null; then
  echo "fuzz: warning: tests/fuzz/corpus differs from gen_seeds output;" \
       "regenerate with: $BUILD/tests/fuzz/gen_seeds tests/fuzz/corpus" >&2
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
summary=""
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t"
  art="$BUILD/artifacts/$t"
  log="$BUILD/$t.log"
  rm -rf "$work"
  mkdir -p "$work" "$art"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  echo "=== fuzz: $t for ${SECS} s ==="
  rc=0
  "$BUILD/tests/fuzz/$t" -max_total_time="$SECS" -timeout=10 \
    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [ "$rc" -ne 0 ]; then
    status=1
    tail -n 40 "$log" >&2
    summary+="$t: FAILED (exit $rc), see $log and $art"$'\n'
  else
    summary+="$t: ok, ${execs:-?} executions"$'\n'
  fi
done
echo "=== fuzz: summary ==="
printf '%s' "$summary"
exit $status
