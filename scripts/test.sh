#!/usr/bin/env bash
# test.sh: install dependencies, build, and run the whole CTest suite twice:
# the default build (warnings as errors) and AddressSanitizer +
# UndefinedBehaviorSanitizer; then a bounded libFuzzer run of every decoder
# (scripts/fuzz.sh).
#
# --extended (or FBX_EXTENDED=1): the same, with the extended checks of
# issue 8 on top: the crash loop test kills the daemon 30 times instead of
# 3 (in both builds), and the compressed soak (bench/soak.c, release
# preset) runs for about 7 minutes of load and prints its summary. The
# soak prints figures; it fails the run only if it could not run.
# FBX_SOAK_BUDGET_S changes the soak's load time (default 420 s).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTENDED=${FBX_EXTENDED:-0}
for a in "$@"; do
  case "$a" in
    --extended) EXTENDED=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$a'" >&2; exit 64 ;;
  esac
done
# the tests read it: crash_loop_test kills 30 times when it is 1
if [ "$EXTENDED" = 1 ]; then export FBX_EXTENDED=1; else unset FBX_EXTENDED; fi
bash scripts/deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
status=0
# what failed, repeated at the very end: a long log is often read only
# at its head and tail
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT
# failures PRESET: each failed test of the preset's last run with its
# first failure lines (FAIL, sanitizer reports, timeouts)
failures() {
  local dir=build/$1/Testing/Temporary
  [ -s "$dir/LastTestsFailed.log" ] || return 0
  while IFS=: read -r _ name; do
    echo "$1: $name"
    awk -v t="$name" '
      $0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" { on = 1; next }
      on && /^Test (Passed|Failed)|^"[^"]*" end time/ { on = 0 }
      on && /FAIL|ERROR: |runtime error|Timeout|Killed|not found/ {
        if (n++ < 15) print "    " $0 }' "$dir/LastTest.log"
  done <"$dir/LastTestsFailed.log"
}
for preset in default asan; do
  echo "=== build and test: $preset ==="
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$JOBS"
  rm -f "build/$preset/Testing/Temporary/LastTestsFailed.log"
  if ! ctest --preset "$preset" -j 1; then
    status=1
    failures "$preset" >>"$SUMMARY"
  fi
done
# Bounded fuzzing of every decoder: 6 targets x 15 s plus the clang build.
echo "=== fuzz (bounded) ==="
bash scripts/fuzz.sh 15 || status=1
if [ "$EXTENDED" = 1 ]; then
  # The compressed soak (issue 8, incident 2): 1,500 devices x 20
  # commands a day, as many simulated days as fit the budget.
  echo "=== extended: compressed soak (bench_soak) ==="
  cmake --preset release >/dev/null
  cmake --build --preset release --target bench_soak -j "$JOBS"
  FBX_BIN_DIR="$PWD/build/release/dispatcher" \
    build/release/bench/bench_soak --budget-s "${FBX_SOAK_BUDGET_S:-420}" ||
    status=1
fi
if [ -s "$SUMMARY" ]; then
  echo "=== failed tests (repeated from above) ==="
  cat "$SUMMARY"
fi
exit $status
