#!/usr/bin/env bash
# test.sh: install dependencies, build, and run the whole CTest suite twice:
# the default build (warnings as errors) and AddressSanitizer +
# UndefinedBehaviorSanitizer; then a bounded libFuzzer run of every decoder
# (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
status=0
for preset in default asan; do
  echo "=== build and test: $preset ==="
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$JOBS"
  ctest --preset "$preset" -j 1 || status=1
done
# Bounded fuzzing of every decoder: 6 targets x 15 s plus the clang build.
echo "=== fuzz (bounded) ==="
bash scripts/fuzz.sh 15 || status=1
exit $status
