#!/usr/bin/env bash
# run.sh: build the release preset (benchmarks on) and run the fusebox
# benchmarks, each figure against what it is compared with, alternately,
# run by run: comparison, engine, comparison, engine ... (P pairs, each
# program invoked with --runs 1, so a fresh store, daemon and simulator
# per run on both sides). For every figure the ratio is taken per pair
# (engine run i / comparison run i) and reported as min / median / max,
# with the medians of both sides beside it. The 1-minute load average
# (/proc/loadavg) is read before every run and its range reported per
# figure. Targets are printed next to the figures, never asserted: the
# exit status is non-zero only when a benchmark program itself failed.
#
#   bash bench/run.sh [--quick] [--pairs P] [--only PARTS] [--no-breaker]
#                     [--breaker-only] [--breaker-600-off] [--open-1m]
#                     [--fanout-100k] [--pgnodes-1m] [--no-build]
#                     [--build-dir DIR] [--doc | --no-doc]
#
# Parts (--only takes a comma list; all of them by default):
#   fanout    bench_fanout vs bench_floor of the same size: 30,000 and
#             1,000,000 devices (--fanout-100k adds 100,000), and
#             1,000,000 with `--type lock --fail-ppm 20000 --offline-ppm
#             100000` (a command that passes the safety gates, 2% of
#             devices failing, 10% offline) vs the floor with the same
#             failures and offline devices (bench_floor --fail-ppm
#             --offline-ppm; if that build's floor lacks them, the plain
#             floor, labelled not like for like)
#   intake    bench_intake --clients K --inflight M, modes 8x1, 32x8,
#             128x8, vs bench_intake --floor (the group-commit floor) of
#             the same mode
#   open      bench_intake --open N for N = 0, 10,000, 100,000
#             (--open-1m adds 1,000,000), N alternating round by round;
#             each N compared with N = 0 of the same round
#   fairness  bench_fairness, A = 1,000,000 devices, max(5, P) runs
#   pg        bench/pg.sh (PostgreSQL job queue) vs bench_fanout of the
#             same size (1,000,000, or $FBX_BENCH_PG_DEVICES), alternated
#   pgnodes   bench/pgnodes.sh --one SIDE: fuseboxd on a shared
#             PostgreSQL store with 1, 2 and 3 nodes (cluster mode) vs one
#             plain fuseboxd on LMDB, the same fleet: 100,000 devices over
#             30 organisations ($FBX_BENCH_PGNODES_DEVICES, _ORGS; --quick
#             20,000 over 10), fan-out of one command per organisation
#             and intake 8 x 1, 32 x 8 (5 s; --quick 2 s); sides alternate
#             lmdb, pg1, pg2, pg3 pair by pair, ratios pgK / lmdb per
#             pair; about 4 minutes a pair on 2 cores. --pgnodes-1m
#             adds 1,000,000 devices, fan-out only (about 11 minutes a
#             pair: enrolling 1M devices in PostgreSQL takes ~3 minutes)
#   breaker   bench_breaker, the incident-1 replay (not a ratio): storms
#             of 1, 10, 60 and 600 s with the settle window on, 1, 10 and
#             60 s off (--breaker-600-off adds 600 s off), each 3 times,
#             600 s once ($FBX_BENCH_BREAKER_RUNS overrides), and a 10 s
#             storm with the certificate expiring; about 35 minutes
#
# --pairs P      pairs (rounds for open) per figure (default 5; --quick 2)
# --quick        2 pairs, smaller sizes (fan-out 30,000 and 300,000, open
#                0 / 2,000 / 20,000, fairness A 300,000, intake 2 s,
#                storms of 1 and 10 s once each); prints, writes no doc
# --no-breaker   skip the replay (a full run includes it)
# --pgnodes-1m   add the 1,000,000-device point to pgnodes
# --breaker-only the replay alone (= --only breaker)
# --no-build     use the build as it is
# --build-dir D  the build tree (default build/release; also
#                $FBX_BENCH_BUILD_DIR); built with cmake -S/-B there
#                unless --no-build
# --doc/--no-doc write docs/benchmarks.md's results block (between its
#                bench:begin / bench:end markers) from this run only;
#                default: written by runs without --quick and --only
#                (--no-breaker included: the block says what was not run)
# $FBX_BENCH_INTAKE: another bench_intake program (testing)
# $FBX_BENCH_DOC: another file to write the block into (testing)
#
# Everything of the run is kept in BUILD_DIR/bench-results (one log per
# program run, results.jsonl: each program's JSON line with the figure,
# pair, side and load added in front).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

QUICK=0
BUILD=1
DOC=auto
PAIRS=
ONLY=
NO_BREAKER=0
BREAKER_600_OFF=0
OPEN_1M=0
FANOUT_100K=0
PGNODES_1M=0
BUILD_DIR=${FBX_BENCH_BUILD_DIR:-${FBX_BENCH_BUILD:-}}
usage() { sed -n '2,72p' "$0" | sed 's/^# \{0,1\}//'; }
need() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then
    echo "run.sh: $1 needs a value" >&2; exit 64
  fi
}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --doc) DOC=1 ;;
    --no-doc) DOC=0 ;;
    --pairs) need "$@"; PAIRS=$2; shift ;;
    --pairs=*) PAIRS=${1#*=} ;;
    --only) need "$@"; ONLY=$2; shift ;;
    --only=*) ONLY=${1#*=} ;;
    --breaker-only) ONLY=breaker ;;
    --no-breaker) NO_BREAKER=1 ;;
    --breaker-600-off) BREAKER_600_OFF=1 ;;
    --open-1m) OPEN_1M=1 ;;
    --fanout-100k) FANOUT_100K=1 ;;
    --pgnodes-1m) PGNODES_1M=1 ;;
    --build-dir) need "$@"; BUILD_DIR=$2; shift ;;
    --build-dir=*) BUILD_DIR=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (--help)" >&2; exit 64 ;;
  esac
  shift
done
ALL_PARTS="fanout intake open fairness pg pgnodes breaker"
if [ -n "$ONLY" ]; then
  PARTS=$(tr ',' ' ' <<< "$ONLY")
  for p in $PARTS; do
    case " $ALL_PARTS " in *" $p "*) ;; *)
      echo "run.sh: --only: unknown part '$p' (one of: $ALL_PARTS)" >&2
      exit 64 ;;
    esac
  done
else
  PARTS=$ALL_PARTS
fi
[ "$NO_BREAKER" = 1 ] && PARTS=${PARTS//breaker/}
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
if [ -z "$PAIRS" ]; then
  if [ "$QUICK" = 1 ]; then PAIRS=2; else PAIRS=5; fi
fi
case "$PAIRS" in ''|*[!0-9]*|0) echo "run.sh: --pairs takes a number >= 1" >&2; exit 64 ;; esac
if [ "$DOC" = auto ]; then
  if [ "$QUICK" = 0 ] && [ -z "$ONLY" ]; then DOC=1; else DOC=0; fi
fi

if [ "$QUICK" = 1 ]; then
  FANOUT_SIZES="30000 300000"; LOCK_N=300000; INTAKE_S=2; OPEN_S=2
  OPEN_NS="0 2000 20000"; FAIR_A=300000; FAIR_RUNS=$PAIRS
  STORMS_ON="1 10"; STORMS_OFF="1 10"; BRK_RUNS=1
else
  FANOUT_SIZES="30000 1000000"; LOCK_N=1000000; INTAKE_S=5; OPEN_S=5
  OPEN_NS="0 10000 100000"; FAIR_A=1000000
  FAIR_RUNS=$(( PAIRS > 5 ? PAIRS : 5 ))
  STORMS_ON="1 10 60 600"; STORMS_OFF="1 10 60"; BRK_RUNS=3
  [ "$BREAKER_600_OFF" = 1 ] && STORMS_OFF="$STORMS_OFF 600"
  [ "$FANOUT_100K" = 1 ] && FANOUT_SIZES="30000 100000 1000000"
  [ "$OPEN_1M" = 1 ] && OPEN_NS="$OPEN_NS 1000000"
fi
INTAKE_MODES="8x1 32x8 128x8"
if [ "$QUICK" = 1 ]; then
  PGN_N=${FBX_BENCH_PGNODES_DEVICES:-20000}; PGN_ORGS=${FBX_BENCH_PGNODES_ORGS:-10}
  PGN_S=2
else
  PGN_N=${FBX_BENCH_PGNODES_DEVICES:-100000}; PGN_ORGS=${FBX_BENCH_PGNODES_ORGS:-30}
  PGN_S=5
fi
PGN_MODES="8x1 32x8"
PGN_SIDES="lmdb pg1 pg2 pg3"
BIG=${FANOUT_SIZES##* }
PG_N=${FBX_BENCH_PG_DEVICES:-$BIG}
# brk_runs S: runs of a breaker storm of S s (a 600 s storm runs once)
brk_runs() {
  if [ -n "${FBX_BENCH_BREAKER_RUNS:-}" ]; then echo "$FBX_BENCH_BREAKER_RUNS"
  elif [ "$1" -ge 600 ]; then echo 1
  else echo "$BRK_RUNS"; fi
}
JOBS=$(nproc 2>/dev/null || echo 2)

# the commit measured: -dirty when the tree differs from it (tracked
# changes or untracked files); checked again at the end
tree_state() { { git status --porcelain 2>/dev/null; git diff HEAD 2>/dev/null; } | cksum; }
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain 2>/dev/null)" ] && REV="$REV-dirty"
TREE0=$(tree_state)

if [ -z "$BUILD_DIR" ]; then
  BUILD_DIR=$ROOT/build/release
  if [ "$BUILD" = 1 ]; then
    bash scripts/deps.sh || exit 1
    cmake --preset release >/dev/null || exit 1
    cmake --build --preset release -j "$JOBS" >/dev/null || {
      echo "run.sh: build failed" >&2; exit 1; }
  fi
elif [ "$BUILD" = 1 ]; then
  bash scripts/deps.sh || exit 1
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DFBX_BENCH=ON -DFBX_SANITIZER=none >/dev/null || exit 1
  cmake --build "$BUILD_DIR" -j "$JOBS" >/dev/null || {
    echo "run.sh: build failed" >&2; exit 1; }
fi
BUILD_DIR=$(cd "$BUILD_DIR" 2>/dev/null && pwd) || {
  echo "run.sh: no build directory $BUILD_DIR" >&2; exit 66; }
START=$(date +%s)
START_UTC=$(date -u +%Y-%m-%d\ %H:%M)
BIN="$BUILD_DIR/bench"
INTAKE=${FBX_BENCH_INTAKE:-$BIN/bench_intake}
export FBX_BIN_DIR="$BUILD_DIR/dispatcher"
OUT="$BUILD_DIR/bench-results"
RES="$OUT/results.jsonl"
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.err
: > "$RES"
: > "$OUT/notes.txt"
FAILED=0

# A signal to run.sh reaches the program running now, which stops its
# daemon and simulator itself.
CHILD=
TAILP=
# shellcheck disable=SC2317 # called by the trap
on_signal() {
  trap - INT TERM
  if [ -n "$CHILD" ]; then
    kill -TERM "$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
  fi
  [ -n "$TAILP" ] && wait "$TAILP" 2>/dev/null
  echo "run.sh: interrupted" >&2
  exit 130
}
trap on_signal INT TERM

load1() { cut -d' ' -f1 /proc/loadavg; }
note() { echo "$*" >> "$OUT/notes.txt"; echo "run.sh: $*" >&2; }

# run_logged BASE CMD...: run one program, its stdout to BASE.log (shown
# on stderr as it comes, JSON lines left out), its stderr to BASE.err.
# @return the program's exit status
run_logged() {
  local base=$1 st; shift
  : > "$base.log"
  "$@" > "$base.log" 2> "$base.err" &
  CHILD=$!
  tail -n +1 -s 0.2 -f --pid="$CHILD" "$base.log" 2>/dev/null |
    sed -u -e '/^{/d' -e 's/^/    /' >&2 &
  TAILP=$!
  wait "$CHILD"
  st=$?
  wait "$TAILP" 2>/dev/null
  CHILD=
  TAILP=
  return "$st"
}

# run1 FIGURE PAIR SIDE CMD...: run one program once, keep its last JSON
# line with "figure", "pair", "side" and the load before the run in front.
# @return 0, or 1 when it failed or printed no JSON line
run1() {
  local fig=$1 i=$2 side=$3 l j st base
  shift 3
  l=$(load1)
  base="$OUT/$fig.$side.$i"
  echo "== $fig, $([ "$fig" = open ] && echo round || echo pair) $i of $PAIRS, $side (load $l): ${*#"$ROOT"/}" >&2
  run_logged "$base" "$@"
  st=$?
  j=$(grep '^{' "$base.log" | tail -n 1)
  if [ "$st" != 0 ] || [ -z "$j" ]; then
    note "$fig pair $i $side failed (status $st$([ -z "$j" ] && echo ', no JSON line')): $(grep -v '^[[:space:]]*$' "$base.err" | tail -n 1 | cut -c1-200) ($base.err)"
    tail -n 5 "$base.err" >&2
    FAILED=1
    return 1
  fi
  printf '{"figure":"%s","pair":%s,"side":"%s","load1_before":%s,%s\n' \
    "$fig" "$i" "$side" "$l" "${j#\{}" >> "$RES"
  return 0
}

# ------------------------------------------------------------ queries
# The awk helpers read results.jsonl: jf(line, key) a field's value.
AWKLIB='
function jf(l, k,   s) {
  if (!match(l, "\"" k "\":(\"[^\"]*\"|[^,}]*)")) return ""
  s = substr(l, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
  gsub(/"/, "", s); return s }
function isort(v, n,   i, j, t) {
  for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t } }
function median(v, n) { return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
'
# stats FIGURE SIDE KEY: "n min median max" of KEY over the side's runs
stats() {
  awk -v fig="$1" -v side="$2" -v key="$3" "$AWKLIB"'
    jf($0, "figure") == fig && jf($0, "side") == side {
      x = jf($0, key); if (x != "") v[++n] = x + 0 }
    END { if (n == 0) { print "0"; exit } isort(v, n)
      print n, v[1], median(v, n), v[n] }' "$RES"
}
# ratios FIGURE SIDE_A SIDE_B KEY [KEY_B]: "n min median max" of the
# per-pair ratio A / B (the pairs where both ran and B > 0)
ratios() {
  awk -v fig="$1" -v sa="$2" -v sb="$3" -v ka="$4" -v kb="${5:-$4}" "$AWKLIB"'
    jf($0, "figure") == fig { s = jf($0, "side"); p = jf($0, "pair")
      if (s == sa) a[p] = jf($0, ka); else if (s == sb) b[p] = jf($0, kb) }
    END { for (p in a) if ((p in b) && a[p] != "" && b[p] + 0 > 0) v[++n] = a[p] / b[p]
      if (n == 0) { print "0"; exit } isort(v, n)
      print n, v[1], median(v, n), v[n] }' "$RES"
}
# loads FIGURE: "min - max" of the 1-minute load before the figure's runs
loads() {
  awk -v fig="$1" "$AWKLIB"'
    jf($0, "figure") == fig { x = jf($0, "load1_before") + 0
      if (n++ == 0 || x < lo) lo = x; if (n == 1 || x > hi) hi = x }
    END { if (n) printf "%.2f - %.2f (%d run%s)\n", lo, hi, n, n == 1 ? "" : "s"; else print "-" }' "$RES"
}
# med FIGURE SIDE KEY: the median, or "" when no run has it
med() {
  local s
  s=$(stats "$1" "$2" "$3")
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" = 0 ] || echo "$3"
}
# jget LINE KEY: a number or string field of a flat JSON line
jget() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,}\"]*\).*/\1/p" <<< "$1"
}
range3() { # "n min med max" [FMT [UNIT]] -> "min / median / max (n pairs)"
  local f=${2:-%.2f} u=${3:-pairs}
  # shellcheck disable=SC2086
  set -- $1
  if [ "$1" = 0 ]; then echo "-"; return; fi
  [ "$1" = 1 ] && u=${u%s}
  # shellcheck disable=SC2059
  printf "$f / $f / $f (%s %s)\n" "$2" "$3" "$4" "$1" "$u"
}
# num N: thousands separators; fx N FMT: printf or "-"
num() { awk -v n="$1" 'BEGIN { if (n == "") { print "-"; exit }
  s = sprintf("%.0f", n); o = ""; neg = s ~ /^-/; if (neg) s = substr(s, 2)
  while (length(s) > 3) { o = "," substr(s, length(s) - 2) o
    s = substr(s, 1, length(s) - 3) }
  print (neg ? "-" : "") s o }'; }
fx() { if [ -z "$1" ]; then echo "-"; else awk -v n="$1" -v f="$2" 'BEGIN { printf f "\n", n }'; fi; }

# ---------------------------------------------------------------- runs
# part_time NAME START: the part's minutes, for the header
PART_TIMES=
part_time() {
  local d=$(( $(date +%s) - $2 ))
  if [ "$d" -lt 120 ]; then d="$d s"; else d="$(( (d + 30) / 60 )) min"; fi
  PART_TIMES="$PART_TIMES${PART_TIMES:+, }$1 $d"
}

LOCK_ARGS="--type lock --fail-ppm 20000 --offline-ppm 100000"
LOCK_FLOOR_LIKE=0
if want fanout; then
  t=$(date +%s)
  for n in $FANOUT_SIZES; do
    for i in $(seq 1 "$PAIRS"); do
      run1 "fanout-$n" "$i" floor "$BIN/bench_floor" --devices "$n" --runs 1
      run1 "fanout-$n" "$i" engine "$BIN/bench_fanout" --devices "$n" --runs 1
    done
  done
  if "$BIN/bench_floor" --help 2>&1 | grep -q -- '--offline-ppm'; then
    LOCK_FLOOR_LIKE=1
    LOCK_FLOOR_ARGS="--fail-ppm 20000 --offline-ppm 100000"
  else
    LOCK_FLOOR_ARGS=
    note "bench_floor has no --fail-ppm/--offline-ppm: the lock row is compared with the plain floor (not like for like)"
  fi
  for i in $(seq 1 "$PAIRS"); do
    # shellcheck disable=SC2086 # lists of options
    run1 "fanout-lock-$LOCK_N" "$i" floor "$BIN/bench_floor" \
      --devices "$LOCK_N" --runs 1 $LOCK_FLOOR_ARGS
    # shellcheck disable=SC2086
    run1 "fanout-lock-$LOCK_N" "$i" engine "$BIN/bench_fanout" \
      --devices "$LOCK_N" --runs 1 $LOCK_ARGS
  done
  part_time fan-out "$t"
fi

INTAKE_OK=0
if want intake; then
  t=$(date +%s)
  if "$INTAKE" --help 2>&1 | grep -q -- '--inflight' &&
     "$INTAKE" --help 2>&1 | grep -q -- '--floor'; then
    INTAKE_OK=1
    for mode in $INTAKE_MODES; do
      k=${mode%x*}; m=${mode#*x}
      for i in $(seq 1 "$PAIRS"); do
        run1 "intake-$mode" "$i" floor "$INTAKE" --clients "$k" \
          --inflight "$m" --runs 1 --seconds "$INTAKE_S" --floor
        run1 "intake-$mode" "$i" engine "$INTAKE" --clients "$k" \
          --inflight "$m" --runs 1 --seconds "$INTAKE_S"
      done
    done
  else
    note "$INTAKE has no --inflight/--floor: intake modes not run"
  fi
  part_time intake "$t"
fi

if want open; then
  t=$(date +%s)
  for i in $(seq 1 "$PAIRS"); do
    for n in $OPEN_NS; do
      run1 open "$i" "n$n" "$INTAKE" --open "$n" --runs 1 \
        --seconds "$OPEN_S"
    done
  done
  part_time open "$t"
fi

FAIR_LOAD_AFTER=
if want fairness; then
  t=$(date +%s)
  l=$(load1)
  echo "== fairness, $FAIR_RUNS runs (load $l)" >&2
  run_logged "$OUT/fairness" "$BIN/bench_fairness" --devices-a "$FAIR_A" \
    --runs "$FAIR_RUNS"
  st=$?
  FAIR_LOAD_AFTER=$(load1)
  j=$(grep '^{' "$OUT/fairness.log" | tail -n 1)
  if [ "$st" = 0 ] && [ -n "$j" ]; then
    # each run's B p99 (created -> recorded), from its line
    p99s=$(sed -n 's/^fairness run=.*(created -> recorded) p50 [0-9.]* p99 \([0-9.]*\) .*/\1/p' \
      "$OUT/fairness.log" | paste -sd, -)
    printf '{"figure":"fairness","pair":0,"side":"engine","load1_before":%s,"load1_after":%s,"b_p99_ms_runs":[%s],%s\n' \
      "$l" "$FAIR_LOAD_AFTER" "$p99s" "${j#\{}" >> "$RES"
  else
    note "fairness failed (status $st); see $OUT/fairness.err"
    tail -n 5 "$OUT/fairness.err" >&2
    FAILED=1
  fi
  part_time fairness "$t"
fi

PG_STATE="not run"
if want pg; then
  t=$(date +%s)
  if [ ! -f bench/pg.sh ]; then
    PG_STATE="bench/pg.sh not present"
  elif [ ! -x "$BIN/bench_pgqueue" ]; then
    PG_STATE="bench_pgqueue not built (libpq-dev missing at configure time)"
  else
    PG_STATE=ran
    for i in $(seq 1 "$PAIRS"); do
      if ! run1 "pg-$PG_N" "$i" pg env BENCH_BIN="$BIN/bench_pgqueue" \
        DEVSIM_BIN="$FBX_BIN_DIR/fusebox-devsim" \
        bash bench/pg.sh --devices "$PG_N" --runs 1; then
        PG_STATE="bench/pg.sh failed in pair $i, see the notes"
        break
      fi
      run1 "pg-$PG_N" "$i" engine "$BIN/bench_fanout" --devices "$PG_N" \
        --runs 1
    done
  fi
  case "$PG_STATE" in ran|*failed*) ;; *) note "PostgreSQL queue: $PG_STATE" ;; esac
  part_time PostgreSQL "$t"
fi

# pgnodes: cluster mode on PostgreSQL, 1..3 nodes, against LMDB; each
# run its own store (a throw-away cluster), daemons and gateways
PGN_STATE="not run"
PGN_FIGS=
if want pgnodes; then
  t=$(date +%s)
  if [ ! -f bench/pgnodes.sh ]; then
    PGN_STATE="bench/pgnodes.sh not present"
  elif [ ! -x "$BIN/bench_pgnodes" ]; then
    PGN_STATE="bench_pgnodes not built"
  elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    PGN_STATE="PostgreSQL server binaries missing (scripts/deps.sh)"
  else
    PGN_STATE=ran
    PGN_FIGS="pgnodes-$PGN_N"
    [ "$PGNODES_1M" = 1 ] && [ "$PGN_N" != 1000000 ] &&
      PGN_FIGS="$PGN_FIGS pgnodes-1000000"
    for fig in $PGN_FIGS; do
      n=${fig#pgnodes-}
      if [ "$n" = "$PGN_N" ]; then
        extra=(--orgs "$PGN_ORGS" --intake "$PGN_MODES" --intake-s "$PGN_S")
      else
        extra=(--orgs "$PGN_ORGS" --no-intake)
      fi
      for i in $(seq 1 "$PAIRS"); do
        for side in $PGN_SIDES; do
          run1 "$fig" "$i" "$side" env FBX_PGNODES_ROUND="$i" \
            bash bench/pgnodes.sh --one "$side" --build-dir "$BUILD_DIR" \
            --no-build --devices "$n" "${extra[@]}"
        done
      done
    done
  fi
  [ "$PGN_STATE" = ran ] || note "pgnodes: $PGN_STATE"
  part_time "PostgreSQL nodes" "$t"
fi

# breaker: one invocation per storm length, as before (not a ratio)
brk() { # NAME ARGS...
  local name=$1 l j st; shift
  l=$(load1)
  echo "== $name (load $l): bench_breaker $*" >&2
  run_logged "$OUT/$name" "$BIN/bench_breaker" "$@"
  st=$?
  j=$(grep '^{' "$OUT/$name.log" | tail -n 1)
  if [ "$st" = 0 ] && [ -n "$j" ]; then
    printf '{"figure":"%s","pair":0,"side":"engine","load1_before":%s,%s\n' \
      "$name" "$l" "${j#\{}" >> "$RES"
  else
    note "$name failed (status $st); see $OUT/$name.err"
    tail -n 5 "$OUT/$name.err" >&2
    FAILED=1
  fi
}
if want breaker; then
  t=$(date +%s)
  for s in $STORMS_ON; do
    brk "breaker-on-$s" --storm-seconds "$s" --settle on --runs "$(brk_runs "$s")"
  done
  for s in $STORMS_OFF; do
    brk "breaker-off-$s" --storm-seconds "$s" --settle off --runs "$(brk_runs "$s")"
  done
  # the certificate the rule depends on expires as the storm starts: the
  # engine trips the global breaker 5 s before (issue 9)
  brk "breaker-cert-10" --storm-seconds 10 --settle on --cert --runs 1
  part_time breaker "$t"
fi
END_UTC=$(date -u +%H:%M)
ELAPSED=$(( $(date +%s) - START ))
[ "$(tree_state)" = "$TREE0" ] ||
  note "the working tree changed during the run (measured: $REV as it was at $START_UTC UTC)"

# ---------------------------------------------------------------- table
ROWS="$OUT/rows.tsv"
: > "$ROWS"
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"; }
pairs_of() { # "n ..." -> "", or " (k of P pairs)" when some are missing
  local n=${1%% *}
  [ "$n" = "$PAIRS" ] || echo " ($n of $PAIRS pairs)"
}

# fanout_rows FIGURE LABEL FLOOR_LABEL N: one fan-out figure
fanout_rows() {
  local fig=$1 lbl=$2 fl=$3 n=$4 r w s tw="-" tr="-" tq="-" tm="-"
  r=$(ratios "$fig" engine floor deliveries_per_s)
  if [ "${r%% *}" = 0 ] && [ -z "$(med "$fig" engine deliveries_per_s)" ]; then
    row "$lbl" "(failed: no engine run)" "-" "-"; return
  fi
  # issue 11: both sizes at least the floor
  if [ "$n" = 30000 ]; then tw="<= 100 ms"; tq=">= 1.0"; fi
  if [ "$n" = 1000000 ]; then tr=">= 500,000/s (engine)"; tq=">= 1.0"; tm="<= 256 MiB"; fi
  case "$fig" in fanout-lock-*) tr="-"; tq="-" ;; esac
  w=$(stats "$fig" engine wall_ms)
  # shellcheck disable=SC2086
  set -- $w
  row "$lbl" "end to end, engine: median (min - max)" "$(fx "${3:-}" %.0f) ms ($(fx "${2:-}" %.0f) - $(fx "${4:-}" %.0f))" "$tw"
  row "$lbl" "deliveries/s: engine / $fl (medians)" "$(num "$(med "$fig" engine deliveries_per_s)") / $(num "$(med "$fig" floor deliveries_per_s)")" "$tr"
  row "$lbl" "engine / $fl, per pair: min / median / max" "$(range3 "$r")" "$tq"
  row "$lbl" "per device p50 / p99 / max, engine (medians)" "$(fx "$(med "$fig" engine p50_ms)" %.0f) / $(fx "$(med "$fig" engine p99_ms)" %.0f) / $(fx "$(med "$fig" engine max_ms)" %.0f) ms" "-"
  row "$lbl" "CPU per delivery: daemon / $fl (medians)" "$(fx "$(med "$fig" engine daemon_cpu_us_per_delivery)" %.2f) / $(fx "$(med "$fig" floor cpu_us_per_delivery)" %.2f) us" "-"
  row "$lbl" "CPU engine / $fl, per pair: min / median / max" "$(range3 "$(ratios "$fig" engine floor daemon_cpu_us_per_delivery cpu_us_per_delivery)")" "-"
  row "$lbl" "daemon VmHWM (whole life, median)" "$(fx "$(med "$fig" engine rss_peak_mib)" %.1f) MiB" "$tm"
  s=$(stats "$fig" engine rss_anon_peak_mib)
  # shellcheck disable=SC2086
  set -- $s
  row "$lbl" "daemon anonymous memory, RssAnon peak: median (max)" "$(fx "${3:-}" %.1f) MiB ($(fx "${4:-}" %.1f))" "-"
  row "$lbl" "store pages mapped, RssFile / RssShmem peak (medians)" "$(fx "$(med "$fig" engine rss_file_peak_mib)" %.1f) / $(fx "$(med "$fig" engine rss_shmem_peak_mib)" %.1f) MiB" "-"
  row "$lbl" "commits (fsyncs) per run: engine / $fl (medians)" "$(fx "$(med "$fig" engine commits)" %.0f) / $(fx "$(med "$fig" floor commits)" %.0f)" "-"
  row "$lbl" "LMDB bytes per delivery: engine / $fl (medians)" "$(fx "$(med "$fig" engine lmdb_bytes_per_delivery)" %.1f) / $(fx "$(med "$fig" floor lmdb_bytes_per_delivery)" %.1f)" "-"
  row "$lbl" "1-minute load before the runs$(pairs_of "$r")" "$(loads "$fig")" "-"
}

if want fanout; then
  for n in $FANOUT_SIZES; do
    fanout_rows "fanout-$n" "fan-out $(num "$n")" floor "$n"
  done
  if [ "$LOCK_FLOOR_LIKE" = 1 ]; then
    fanout_rows "fanout-lock-$LOCK_N" "fan-out $(num "$LOCK_N") lock, 2% fail, 10% offline" "floor" "$LOCK_N"
  else
    fanout_rows "fanout-lock-$LOCK_N" "fan-out $(num "$LOCK_N") lock, 2% fail, 10% offline" "plain floor (NOT like for like: query, no failures, none offline)" "$LOCK_N"
  fi
fi
if want pg; then
  fig="pg-$PG_N"; lbl="PostgreSQL queue, $(num "$PG_N") devices"
  if [ "$PG_STATE" != ran ]; then
    row "$lbl" "fusebox / PostgreSQL" "(no figure: $PG_STATE)" ">= 25x"
  else
    r=$(ratios "$fig" engine pg deliveries_per_s)
    row "$lbl" "deliveries/s: fusebox fan-out / PostgreSQL queue (medians)" "$(num "$(med "$fig" engine deliveries_per_s)") / $(num "$(med "$fig" pg deliveries_per_s)")" "-"
    row "$lbl" "fusebox / PostgreSQL, per pair: min / median / max" "$(range3 "$r" %.1fx)" ">= 25x"
    row "$lbl" "1-minute load before the runs$(pairs_of "$r")" "$(loads "$fig")" "-"
  fi
fi
if want pgnodes; then
  if [ "$PGN_STATE" != ran ]; then
    row "PostgreSQL nodes" "(not run: $PGN_STATE)" "-" "-"
  fi
  for fig in $PGN_FIGS; do
    n=${fig#pgnodes-}
    lbl="PostgreSQL nodes, $(num "$n") devices over $PGN_ORGS organisations"
    row "$lbl" "fan-out deliveries/s, LMDB (median)" "$(num "$(med "$fig" lmdb fanout_deliveries_per_s)")" "-"
    row "$lbl" "fan-out wall, LMDB (median)" "$(fx "$(med "$fig" lmdb fanout_wall_ms)" %.0f) ms" "-"
    for side in $PGN_SIDES; do
      [ "$side" = lmdb ] && continue
      k=${side#pg}
      r=$(ratios "$fig" "$side" lmdb fanout_deliveries_per_s)
      row "$lbl" "$k node$([ "$k" = 1 ] || echo s): fan-out deliveries/s, wall (medians)" "$(num "$(med "$fig" "$side" fanout_deliveries_per_s)")/s, $(fx "$(med "$fig" "$side" fanout_wall_ms)" %.0f) ms" "-"
      row "$lbl" "$k node$([ "$k" = 1 ] || echo s) / LMDB, fan-out per pair: min / median / max" "$(range3 "$r" %.3f)" "-"
      row "$lbl" "$k node$([ "$k" = 1 ] || echo s): daemons' / machine CPU per delivery (medians)" "$(fx "$(med "$fig" "$side" fanout_daemon_cpu_us_per_delivery)" %.1f) / $(fx "$(med "$fig" "$side" fanout_machine_cpu_us_per_delivery)" %.1f) us (LMDB $(fx "$(med "$fig" lmdb fanout_daemon_cpu_us_per_delivery)" %.1f) / $(fx "$(med "$fig" lmdb fanout_machine_cpu_us_per_delivery)" %.1f))" "-"
    done
    if [ "$n" = "$PGN_N" ]; then
      for mode in $PGN_MODES; do
        row "$lbl" "intake ${mode/x/ x }: commands/s, LMDB (median)" "$(num "$(med "$fig" lmdb "intake_${mode}_commands_per_s")")" "-"
        for side in $PGN_SIDES; do
          [ "$side" = lmdb ] && continue
          k=${side#pg}
          r=$(ratios "$fig" "$side" lmdb "intake_${mode}_commands_per_s")
          row "$lbl" "intake ${mode/x/ x }, $k node$([ "$k" = 1 ] || echo s): commands/s, p50 / p99 ack (medians)" "$(num "$(med "$fig" "$side" "intake_${mode}_commands_per_s")")/s, $(fx "$(med "$fig" "$side" "intake_${mode}_p50_ms")" %.1f) / $(fx "$(med "$fig" "$side" "intake_${mode}_p99_ms")" %.1f) ms" "-"
          row "$lbl" "intake ${mode/x/ x }, $k node$([ "$k" = 1 ] || echo s) / LMDB per pair: min / median / max" "$(range3 "$r" %.3f)" "-"
        done
      done
    fi
    lost=$(awk -v fig="$fig" "$AWKLIB"'jf($0, "figure") == fig { t += jf($0, "leases_lost"); d += jf($0, "dup_after_durable_success") + jf($0, "foreign") } END { printf "%d / %d\n", t, d }' "$RES")
    row "$lbl" "leases taken from a live node / gateway dups + foreign (all runs)" "$lost" "0 / 0"
    row "$lbl" "1-minute load before the runs" "$(loads "$fig")" "-"
  done
fi
if want intake; then
  for mode in $INTAKE_MODES; do
    fig="intake-$mode"; lbl="intake ${mode/x/ x } (clients x in flight)"
    if [ "$INTAKE_OK" = 0 ]; then
      row "$lbl" "(not run: bench_intake has no --inflight/--floor)" "-" ">= 0.8 of the floor"
      continue
    fi
    tc="-"; [ "$mode" = 128x8 ] && tc=">= 35,000/s (engine)"
    r=$(ratios "$fig" engine floor commands_per_s)
    row "$lbl" "commands/s: engine / group-commit floor (medians)" "$(num "$(med "$fig" engine commands_per_s)") / $(num "$(med "$fig" floor commands_per_s)")" "$tc"
    row "$lbl" "engine / floor, per pair: min / median / max" "$(range3 "$r")" ">= 0.8"
    row "$lbl" "submit -> durable ack p50 / p99 / max, engine (medians)" "$(fx "$(med "$fig" engine p50_ms)" %.2f) / $(fx "$(med "$fig" engine p99_ms)" %.2f) / $(fx "$(med "$fig" engine max_ms)" %.2f) ms" "-"
    row "$lbl" "the same, floor (medians)" "$(fx "$(med "$fig" floor p50_ms)" %.2f) / $(fx "$(med "$fig" floor p99_ms)" %.2f) / $(fx "$(med "$fig" floor max_ms)" %.2f) ms" "-"
    row "$lbl" "CPU per command: daemon / floor (medians)" "$(fx "$(med "$fig" engine daemon_cpu_us_per_command)" %.0f) / $(fx "$(med "$fig" floor daemon_cpu_us_per_command)" %.0f) us" "-"
    row "$lbl" "commands per commit: engine / floor (medians)" "$(fx "$(med "$fig" engine commands_per_commit)" %.1f) / $(fx "$(med "$fig" floor commands_per_commit)" %.1f)" "-"
    row "$lbl" "errors, largest run: engine / floor" "$(fx "$(stats "$fig" engine errors | awk '{ print $4 }')" %.0f) / $(fx "$(stats "$fig" floor errors | awk '{ print $4 }')" %.0f)" "-"
    row "$lbl" "1-minute load before the runs$(pairs_of "$r")" "$(loads "$fig")" "-"
  done
fi
if want open; then
  k=$(jget "$(grep -F '"figure":"open",' "$RES" | head -n 1)" clients)
  lbl="open commands, intake with ${k:-?} clients"
  for n in $OPEN_NS; do
    row "$lbl" "$(num "$n") open: commands/s, daemon CPU per command (medians)" "$(num "$(med open "n$n" commands_per_s)")/s, $(fx "$(med open "n$n" daemon_cpu_us_per_command)" %.0f) us" "-"
  done
  for n in $OPEN_NS; do
    [ "$n" = 0 ] && continue
    r=$(ratios open "n$n" n0 daemon_cpu_us_per_command)
    row "$lbl" "$(num "$n") / none, per round: CPU per command" "$(range3 "$r" %.2f rounds)" "<= 1.2 (within 20%)"
    row "$lbl" "$(num "$n") / none, per round: commands/s" "$(range3 "$(ratios open "n$n" n0 commands_per_s)" %.2f rounds)" "-"
  done
  row "$lbl" "1-minute load before the runs" "$(loads open)" "-"
fi
if want fairness; then
  fa=$(grep -F '"figure":"fairness",' "$RES" | head -n 1)
  lbl="fairness, A $(num "$FAIR_A")"
  if [ -z "$fa" ]; then
    row "$lbl" "(failed)" "-" "p99 <= 50 ms"
  else
    tgt="-"; [ "$FAIR_A" = 1000000 ] && tgt="p99 <= 50 ms"
    runs=$(sed -n 's/.*"b_p99_ms_runs":\[\([^]]*\)\].*/\1/p' <<< "$fa" | tr ',' '\n' |
      awk 'NF { v[++n] = $1 + 0 } END { if (!n) { print 0; exit }
        for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
        print n, v[1], (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[n] }')
    row "$lbl" "B time to result p99 (created -> recorded), per run: min / median / max" "$(range3 "$runs" "%.0f ms" runs)" "$tgt"
    row "$lbl" "B time to result p50 / p99 (medians of the runs)" "$(fx "$(jget "$fa" b_p50_ms)" %.0f) / $(fx "$(jget "$fa" b_p99_ms)" %.0f) ms" "-"
    row "$lbl" "B p99 from the client's send (median)" "$(fx "$(jget "$fa" b_send_to_result_p99_ms)" %.0f) ms" "-"
    row "$lbl" "B submit reply p99 (median)" "$(fx "$(jget "$fa" b_submit_p99_ms)" %.1f) ms" "-"
    row "$lbl" "A deliveries/s meanwhile (median)" "$(num "$(jget "$fa" a_deliveries_per_s)")" "-"
    row "$lbl" "1-minute load before / after the runs" "$(jget "$fa" load1_before) / $FAIR_LOAD_AFTER" "-"
  fi
fi

# breaker: the targets of issue 9, per settle setting and storm length
bline() { # SETTLE S: the summary line of that breaker run
  grep '"bench":"breaker"' "$RES" | grep "\"settle\":\"$1\"" |
    grep '"cert":false' | grep "\"storm_s\":$2," | head -n 1
}
bcert() { grep '"bench":"breaker"' "$RES" | grep '"cert":true' | head -n 1; }
# worst B: "org-007: 3 of 308 (0.97 %)", or "none"
worst() {
  if [ "$(jget "$1" worst_org)" = none ]; then echo "none"
  else echo "$(jget "$1" worst_org): $(jget "$1" worst_org_locked) of $(jget "$1" worst_org_fleet) ($(jget "$1" worst_org_pct) %)"; fi
}
brk_rows() { # SETTLE S
  local b lbl tgt
  b=$(bline "$1" "$2")
  lbl="breaker, settle $1, 32,000 locks in $2 s"
  if [ -z "$b" ]; then row "$lbl" "(failed)" "-" "-"; return; fi
  if [ "$1" = on ]; then tgt="0 ($(jget "$b" target_zero_storm_locks))"
  else tgt="<= max(1, 1%) per org ($(jget "$b" target_org_cap))"; fi
  row "$lbl" "devices locked by the storm (simulator's count)" "$(num "$(jget "$b" storm_locked_total)") ($(num "$(jget "$b" storm_locked_sim)"))" "$tgt"
  row "$lbl" "org-001 / worst organisation" "$(jget "$b" storm_locked_org001) / $(worst "$b")" "-"
  row "$lbl" "baseline / operator locks held" "$(jget "$b" baseline_held) of $(jget "$b" baseline_cmds) / $(jget "$b" operator_held)" "0 / 0 ($(jget "$b" target_none_held))"
  row "$lbl" "baseline lock created -> sent, worst" "$(jget "$b" baseline_max_delay_ms) ms" "<= $(( $(jget "$b" settle_s) * 1000 + 1000 )) ms ($(jget "$b" target_baseline_delay))"
  row "$lbl" "1-minute load before the runs" "$(loads "breaker-$1-$2")" "-"
}
if want breaker; then
  for s in $STORMS_ON; do brk_rows on "$s"; done
  for s in $STORMS_OFF; do brk_rows off "$s"; done
  b=$(bcert)
  if [ -n "$b" ]; then
    row "breaker, certificate expiring at a 10 s storm" "global trip -> storm start; devices locked by the storm" "$(( - $(jget "$b" storm_start_to_global_trip_ms) )) ms before; $(num "$(jget "$b" storm_locked_total)")" "tripped before expiry; 0 ($(jget "$b" target_zero_storm_locks))"
  else
    row "breaker, certificate expiring at a 10 s storm" "(failed)" "-" "-"
  fi
fi

# render_breaker: the incident-1 table of issue 9's closing note
render_breaker() {
  local b settle s list
  echo "| settle window | storm length | runs | devices locked by the storm (simulator) | org-001 (20,000) | worst organisation | storm commands admitted / held | baseline held | operator held | baseline created -> sent, worst | first storm lock -> global trip | targets (zero / cap / none held / delay) |"
  echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"
  for settle in on off; do
    if [ "$settle" = on ]; then list=$STORMS_ON; else list=$STORMS_OFF; fi
    for s in $list; do
      b=$(bline "$settle" "$s")
      if [ -z "$b" ]; then echo "| $settle | $s s | | (failed) | | | | | | | | |"; continue; fi
      echo "| $settle ($(jget "$b" settle_s) s) | $s s | $(jget "$b" runs) | $(num "$(jget "$b" storm_locked_total)") ($(num "$(jget "$b" storm_locked_sim)")) | $(jget "$b" storm_locked_org001) | $(worst "$b") | $(num "$(jget "$b" storm_admitted)") / $(num "$(jget "$b" storm_held)") | $(jget "$b" baseline_held) of $(jget "$b" baseline_cmds) | $(jget "$b" operator_held) | $(jget "$b" baseline_max_delay_ms) ms | $(jget "$b" first_storm_lock_to_global_trip_ms) ms | $(jget "$b" target_zero_storm_locks) / $(jget "$b" target_org_cap) / $(jget "$b" target_none_held) / $(jget "$b" target_baseline_delay) |"
    done
  done
}

# render_text / render_md: the same rows, aligned
render_text() {
  awk -F '\t' 'BEGIN { h[1]="benchmark"; h[2]="figure"; h[3]="result"; h[4]="target" }
    { for (i = 1; i <= 4; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END { for (i = 1; i <= 4; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
      fmt = "%-" w[1] "s  %-" w[2] "s  %" w[3] "s  %-" w[4] "s\n"
      printf fmt, h[1], h[2], h[3], h[4]
      printf fmt, dashes(w[1]), dashes(w[2]), dashes(w[3]), dashes(w[4])
      for (r = 1; r <= NR; r++) {
        if (r > 1 && c[r, 1] != c[r - 1, 1]) print ""
        printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4] } }
    function dashes(n,   s) { s = ""; while (n-- > 0) s = s "-"; return s }' "$ROWS"
}
render_md() {
  awk -F '\t' 'BEGIN { h[1]="benchmark"; h[2]="figure"; h[3]="result"; h[4]="target" }
    { for (i = 1; i <= 4; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END { for (i = 1; i <= 4; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
      fmt = "| %-" w[1] "s | %-" w[2] "s | %" w[3] "s | %-" w[4] "s |\n"
      printf fmt, h[1], h[2], h[3], h[4]
      printf "| %s | %s | %s: | %s |\n", dashes(w[1]), dashes(w[2]), dashes(w[3] - 1), dashes(w[4])
      for (r = 1; r <= NR; r++) printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4] }
    function dashes(n,   s) { s = ""; while (n-- > 0) s = s "-"; return s }' "$ROWS"
}

CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
FS=$(df -PT /tmp 2>/dev/null | awk 'NR == 2 { print $2 }')
MACHINE="$(nproc) CPUs ($CPU), $MEM RAM, Linux $(uname -r), /tmp on ${FS:-?}"
CMD="bash bench/run.sh"
[ "$QUICK" = 1 ] && CMD="$CMD --quick"
[ -n "$ONLY" ] && CMD="$CMD --only $(tr ' ' ',' <<< "$PARTS" | sed 's/^,*//; s/,*$//; s/,,*/,/g')"
[ "$NO_BREAKER" = 1 ] && [ -z "$ONLY" ] && CMD="$CMD --no-breaker"
[ "$PAIRS" != "$([ "$QUICK" = 1 ] && echo 2 || echo 5)" ] && CMD="$CMD --pairs $PAIRS"
[ "$FANOUT_100K" = 1 ] && CMD="$CMD --fanout-100k"
[ "$PGNODES_1M" = 1 ] && CMD="$CMD --pgnodes-1m"
[ "$OPEN_1M" = 1 ] && CMD="$CMD --open-1m"
[ "$BREAKER_600_OFF" = 1 ] && CMD="$CMD --breaker-600-off"
SKIPPED=
for p in $ALL_PARTS; do want "$p" || SKIPPED="$SKIPPED${SKIPPED:+, }$p"; done
METHOD="Engine and comparison alternate run by run (comparison first), $PAIRS pair$([ "$PAIRS" = 1 ] || echo s) per figure; every program runs once per invocation (\`--runs 1\`: a fresh store, daemon and simulator on both sides). Ratios are per pair (engine run i / comparison run i), min / median / max; medians of both sides beside them. The 1-minute load average is read before every run."
HEAD1="Measured $START_UTC - $END_UTC UTC at commit \`$REV\`$([ "$BUILD" = 0 ] && echo " (--no-build: the binaries of $BUILD_DIR as they were)")$([ "$QUICK" = 1 ] && echo '; quick run: smaller sizes')."
HEAD2="The run took $ELAPSED s (${PART_TIMES:-nothing run})$([ -n "$SKIPPED" ] && echo "; not run: $SKIPPED")."

echo
echo "fusebox benchmarks: $HEAD1"
echo "Machine: $MACHINE."
echo "$METHOD"
echo "$HEAD2"
echo
render_text
if want breaker; then
  echo
  echo "Incident 1 replay (bench_breaker; storm commands = automatic, created from"
  echo "the storm's start; counts from the engine's journal):"
  echo
  render_breaker
fi
if [ -s "$OUT/notes.txt" ]; then
  echo
  sed 's/^/note: /' "$OUT/notes.txt"
fi
echo
cat "$RES"

if [ "$DOC" = 1 ]; then
  DOCF=${FBX_BENCH_DOC:-docs/benchmarks.md}
  BLOCK="$OUT/block.md"
  {
    echo "<!-- bench:begin (written by bench/run.sh; do not edit by hand) -->"
    echo
    echo "$HEAD1"
    echo "Machine: $MACHINE."
    echo "$METHOD"
    echo "$HEAD2"
    echo "Reproduce with \`$CMD\`."
    echo
    render_md
    if want breaker; then
      echo
      echo "Incident 1 replay (\`bench_breaker\`):"
      echo
      render_breaker
    fi
    if [ -s "$OUT/notes.txt" ]; then
      echo
      sed 's/^/- /' "$OUT/notes.txt"
    fi
    echo
    echo "The JSON lines of this run (each program's line, with the figure, pair, side and load before the run in front):"
    echo
    echo '```'
    cat "$RES"
    echo '```'
    echo
    echo "<!-- bench:end -->"
  } > "$BLOCK"
  if [ -f "$DOCF" ] && grep -q '<!-- bench:begin' "$DOCF" &&
     grep -q '<!-- bench:end -->' "$DOCF"; then
    awk -v block="$BLOCK" '
      /<!-- bench:begin/ { while ((getline l < block) > 0) print l; skip = 1; next }
      /<!-- bench:end -->/ { skip = 0; next }
      !skip { print }' "$DOCF" > "$DOCF.tmp" && mv "$DOCF.tmp" "$DOCF"
  else
    { [ -f "$DOCF" ] && cat "$DOCF" || echo "# Benchmarks"; echo; cat "$BLOCK"; } > "$DOCF.tmp" &&
      mv "$DOCF.tmp" "$DOCF"
  fi
  echo
  echo "written: $DOCF"
fi
exit $FAILED
