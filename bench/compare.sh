#!/usr/bin/env bash
# compare.sh: the fan-out of two engine builds and the raw LMDB/ZeroMQ
# floor, run alternately (floor, A, B, floor, A, B, ...) in one session so
# that the machine's drift falls on all three alike. Prints each run, then
# per pair the ratios B/A and B/floor, A/floor, and min/median/max of each
# ratio with the load average before and after. Nothing passes or fails on
# time.
#
#   bash bench/compare.sh A_BIN_DIR B_BIN_DIR [--devices N] [--pairs P]
#
# A_BIN_DIR and B_BIN_DIR hold fuseboxd and fusebox-devsim (a build's
# dispatcher/ folder); the bench programs come from build/release/bench
# (cmake --preset release && cmake --build --preset release).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 64; }
A=$1; B=$2; shift 2
DEVICES=1000000
PAIRS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; exit 64 ;;
  esac
done
BIN=build/release/bench
for f in "$BIN/bench_fanout" "$BIN/bench_floor" "$A/fuseboxd" "$B/fuseboxd"; do
  [ -x "$f" ] || { echo "compare.sh: $f missing" >&2; exit 66; }
done
rate() { sed -n 's/.*"deliveries_per_s":\([0-9.]*\).*/\1/p' | head -n 1; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
F=(); RA=(); RB=()
for i in $(seq 1 "$PAIRS"); do
  f=$(FBX_BIN_DIR="$A" "$BIN/bench_floor" --devices "$DEVICES" --runs 1 | rate)
  a=$(FBX_BIN_DIR="$A" "$BIN/bench_fanout" --devices "$DEVICES" --runs 1 | rate)
  b=$(FBX_BIN_DIR="$B" "$BIN/bench_fanout" --devices "$DEVICES" --runs 1 | rate)
  echo "pair $i: floor ${f:-?}/s  A ${a:-?}/s  B ${b:-?}/s  load $(cut -d' ' -f1 /proc/loadavg)"
  F+=("${f:-0}"); RA+=("${a:-0}"); RB+=("${b:-0}")
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
stats() { # name values...: min/median/max
  local name=$1; shift
  printf '%s\n' "$@" | sort -g | awk -v n="$name" '{ v[NR] = $1 }
    END { if (NR == 0) exit; m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%-12s min %.3f  median %.3f  max %.3f  (%d pairs)\n", n, v[1], m, v[NR], NR }'
}
BA=(); AF=(); BF=()
for i in $(seq 0 $((PAIRS - 1))); do
  BA+=("$(awk -v a="${RA[$i]}" -v b="${RB[$i]}" 'BEGIN { print (a > 0 ? b / a : 0) }')")
  AF+=("$(awk -v a="${RA[$i]}" -v f="${F[$i]}" 'BEGIN { print (f > 0 ? a / f : 0) }')")
  BF+=("$(awk -v b="${RB[$i]}" -v f="${F[$i]}" 'BEGIN { print (f > 0 ? b / f : 0) }')")
done
stats "B/A" "${BA[@]}"
stats "A/floor" "${AF[@]}"
stats "B/floor" "${BF[@]}"
