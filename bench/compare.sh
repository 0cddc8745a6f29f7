#!/usr/bin/env bash
# compare.sh: the fan-out (or the intake) of two engine builds and the raw
# LMDB/ZeroMQ floor (the group-commit floor), run alternately (floor, A,
# B, floor, A, B, ...) in one session so
# that the machine's drift falls on all three alike. Prints each run, then
# per pair the ratios B/A and B/floor, A/floor, and min/median/max of each
# ratio with the load average before and after. Nothing passes or fails on
# time. Beside the rates it compares CPU per delivery (the daemon's, all
# threads, from /proc/PID/stat; the floor's own process): a figure the
# load of a shared machine disturbs less than wall time.
#
#   bash bench/compare.sh A_BIN_DIR B_BIN_DIR [--devices N] [--pairs P]
#                         [--bench DIR] [--fanout-args 'ARGS']
#                         [--intake KxM]
#
# --intake KxM compares intake instead: bench_intake with K clients of M
# requests in flight each, 5 s a run, against bench_intake --floor;
# rates are commands/s, CPU is per command.
#
# --fanout-args passes more options to both fan-outs, e.g. '--type lock
# --fail-ppm 20000 --offline-ppm 100000' (bench_fanout --help).
#
# A_BIN_DIR and B_BIN_DIR hold fuseboxd and fusebox-devsim (a build's
# dispatcher/ folder); the bench programs come from build/release/bench
# (cmake --preset release && cmake --build --preset release) or --bench.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ $# -ge 2 ] || { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 64; }
A=$1; B=$2; shift 2
DEVICES=1000000
PAIRS=5
BIN=build/release/bench
FARGS=
INTAKE=
while [ $# -gt 0 ]; do
  case "$1" in
    --intake) INTAKE=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --bench) BIN=$2; shift 2 ;;
    --fanout-args) FARGS=$2; shift 2 ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; exit 64 ;;
  esac
done
UNIT=delivery
if [ -n "$INTAKE" ]; then
  K=${INTAKE%x*}; M=${INTAKE#*x}
  case "$K$M" in ''|*[!0-9]*) echo "compare.sh: --intake wants KxM, e.g. 32x8" >&2; exit 64 ;; esac
  UNIT='command'
  NEED=("$BIN/bench_intake" "$BIN/bench_intake_floor")
else
  NEED=("$BIN/bench_fanout" "$BIN/bench_floor")
fi
for f in "${NEED[@]}" "$A/fuseboxd" "$B/fuseboxd"; do
  [ -x "$f" ] || { echo "compare.sh: $f missing" >&2; exit 66; }
done
rate() { sed -n 's/.*"\(deliveries\|commands\)_per_s":\([0-9.]*\).*/\2/p' | head -n 1; }
cpu() { sed -n 's/.*"[a-z_]*cpu_us_per_\(delivery\|command\)":\([0-9.]*\).*/\2/p' | head -n 1; }
one() { # A|B|floor: one run, its JSON line
  local dir=$A fl=(); [ "$1" = B ] && dir=$B
  [ "$1" = floor ] && fl=(--floor)
  if [ -n "$INTAKE" ]; then
    FBX_BIN_DIR="$dir" "$BIN/bench_intake" "${fl[@]}" \
      --clients "$K" --inflight "$M" --seconds 5 --runs 1 | tail -n 1
  elif [ "$1" = floor ]; then
    FBX_BIN_DIR="$dir" "$BIN/bench_floor" --devices "$DEVICES" --runs 1 | tail -n 1
  else
    # shellcheck disable=SC2086 # FARGS is a list of options
    FBX_BIN_DIR="$dir" "$BIN/bench_fanout" --devices "$DEVICES" --runs 1 $FARGS | tail -n 1
  fi
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
F=(); RA=(); RB=(); CF=(); CA=(); CB=()
for i in $(seq 1 "$PAIRS"); do
  fo=$(one floor); ao=$(one A); bo=$(one B)
  f=$(echo "$fo" | rate); a=$(echo "$ao" | rate); b=$(echo "$bo" | rate)
  cf=$(echo "$fo" | cpu); ca=$(echo "$ao" | cpu); cb=$(echo "$bo" | cpu)
  echo "pair $i: floor ${f:-?}/s  A ${a:-?}/s  B ${b:-?}/s  CPU us/$UNIT floor ${cf:-?} A ${ca:-?} B ${cb:-?}  load $(cut -d' ' -f1 /proc/loadavg)"
  F+=("${f:-0}"); RA+=("${a:-0}"); RB+=("${b:-0}")
  CF+=("${cf:-0}"); CA+=("${ca:-0}"); CB+=("${cb:-0}")
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
# CPU per delivery: floor / engine, so above 1 is cheaper than the floor
XA=(); XF=(); XB=()
for i in $(seq 0 $((PAIRS - 1))); do
  XB+=("$(awk -v a="${CA[$i]}" -v b="${CB[$i]}" 'BEGIN { print (b > 0 ? a / b : 0) }')")
  XA+=("$(awk -v a="${CA[$i]}" -v f="${CF[$i]}" 'BEGIN { print (a > 0 ? f / a : 0) }')")
  XF+=("$(awk -v b="${CB[$i]}" -v f="${CF[$i]}" 'BEGIN { print (b > 0 ? f / b : 0) }')")
done
echo "CPU per $UNIT as a ratio (the other's CPU / this one's; > 1 = cheaper):"
stats "cpu A/B" "${XB[@]}"
stats "cpu floor/A" "${XA[@]}"
stats "cpu floor/B" "${XF[@]}"
