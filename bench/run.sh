#!/usr/bin/env bash
# run.sh: build the release preset (benchmarks on) and run every fusebox
# benchmark: fan-out with its raw floor, intake, fairness, breaker
# reaction, and the PostgreSQL queue when bench/pg.sh exists. Each figure
# is the median of 3 runs (--quick: 1 run, smaller sizes). Prints one
# aligned table and one JSON line per figure, and (full runs, or --doc)
# writes the table into docs/benchmarks.md between its markers. Targets
# are printed next to the figures; nothing passes or fails on time. The
# exit status is non-zero only when a benchmark program itself failed.
#
#   bash bench/run.sh [--quick] [--no-build] [--doc | --no-doc]
#
# bench/pg.sh hook: if the file exists it is run as
#   bash bench/pg.sh --devices N --runs R
# (N = the largest fan-out, or $FBX_BENCH_PG_DEVICES) and must print one
# JSON line with "bench":"pgqueue", "devices" and "deliveries_per_s"; the
# fan-out of the same size (else the largest) is compared with it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
BUILD=1
DOC=auto
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --doc) DOC=1 ;;
    --no-doc) DOC=0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$a'" >&2; exit 64 ;;
  esac
done
[ "$DOC" = auto ] && DOC=$((1 - QUICK))

if [ "$QUICK" = 1 ]; then
  RUNS=1; FANOUT_SIZES="30000 100000 300000"; INTAKE_S=2
  FAIR_A=300000; STORMS="1 10"
else
  RUNS=3; FANOUT_SIZES="30000 100000 1000000"; INTAKE_S=3
  FAIR_A=1000000; STORMS="1 60"
fi
BIG=${FANOUT_SIZES##* }
JOBS=$(nproc 2>/dev/null || echo 2)
BIN="$ROOT/build/release/bench"
OUT="$ROOT/build/release/bench-results"
START=$(date +%s)

if [ "$BUILD" = 1 ]; then
  bash scripts/deps.sh || exit 1
  cmake --preset release >/dev/null || exit 1
  cmake --build --preset release -j "$JOBS" >/dev/null || {
    echo "run.sh: build failed" >&2; exit 1; }
fi
export FBX_BIN_DIR="$ROOT/build/release/dispatcher"
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
FAILED=0

# A signal to run.sh reaches the program running now, which stops its
# daemon and simulator itself.
CHILD=
on_signal() {
  trap - INT TERM
  if [ -n "$CHILD" ]; then
    kill -TERM "$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
  fi
  echo "run.sh: interrupted" >&2
  exit 130
}
trap on_signal INT TERM

# bench NAME CMD...: run one program, show its lines, keep its JSON.
bench() {
  local name=$1 st; shift
  echo "== $name: $*" >&2
  "$@" > >(tee "$OUT/$name.log" >&2) 2> "$OUT/$name.err" &
  CHILD=$!
  wait "$CHILD"
  st=$?
  CHILD=
  sleep 0.2 # let tee finish the log
  if [ "$st" = 0 ]; then
    grep '^{' "$OUT/$name.log" >> "$OUT/results.jsonl"
  else
    echo "run.sh: $name failed, status $st (see $OUT/$name.err)" >&2
    tail -n 5 "$OUT/$name.err" >&2
    FAILED=1
  fi
}

# jget LINE KEY: a number or string field of a flat JSON line.
jget() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,}\"]*\).*/\1/p" <<< "$1"
}

# line BENCH [KEY VALUE]: the first result line of a benchmark, optionally
# the one whose KEY equals VALUE.
line() {
  if [ $# -ge 3 ]; then
    grep "\"bench\":\"$1\"" "$OUT/results.jsonl" | grep "\"$2\":$3[,}]" | head -n 1
  else
    grep "\"bench\":\"$1\"" "$OUT/results.jsonl" | head -n 1
  fi
}

for n in $FANOUT_SIZES; do
  bench "floor-$n" "$BIN/bench_floor" --devices "$n" --runs "$RUNS"
  fr=$(jget "$(line floor devices "$n")" deliveries_per_s)
  bench "fanout-$n" "$BIN/bench_fanout" --devices "$n" --runs "$RUNS" \
    ${fr:+--floor-rate "$fr"}
done
bench intake "$BIN/bench_intake" --runs "$RUNS" --seconds "$INTAKE_S"
bench fairness "$BIN/bench_fairness" --devices-a "$FAIR_A" --runs "$RUNS"
for s in $STORMS; do
  bench "breaker-$s" "$BIN/bench_breaker" --storm-seconds "$s" --runs "$RUNS"
done
if [ -f bench/pg.sh ]; then
  bench pgqueue bash bench/pg.sh --devices "${FBX_BENCH_PG_DEVICES:-$BIG}" \
    --runs "$RUNS"
fi

# ---------------------------------------------------------------- table
ROWS="$OUT/rows.tsv"
: > "$ROWS"
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"; }
# num N: thousands separators
num() { awk -v n="$1" 'BEGIN { if (n == "") { print "-"; exit }
  s = sprintf("%.0f", n); o = ""; neg = s ~ /^-/; if (neg) s = substr(s, 2)
  while (length(s) > 3) { o = "," substr(s, length(s) - 2) o
    s = substr(s, 1, length(s) - 3) }
  print (neg ? "-" : "") s o }'; }
dash() { [ -n "$1" ] && echo "$1" || echo "-"; }

for n in $FANOUT_SIZES; do
  f=$(line fanout devices "$n"); fl=$(line floor devices "$n")
  lbl="fan-out $(num "$n")"
  if [ -z "$f" ]; then row "$lbl" "(failed)" "-" "-"; continue; fi
  tgt_wall="-"; tgt_rate="-"; tgt_ratio="-"; tgt_rss="-"
  [ "$n" = 30000 ] && tgt_wall="<= 100 ms"
  if [ "$n" = 1000000 ]; then
    tgt_rate=">= 500,000/s"; tgt_ratio=">= 0.7"; tgt_rss="<= 256 MiB"
  fi
  row "$lbl" "end to end (submit -> all results durable)" "$(jget "$f" wall_ms) ms" "$tgt_wall"
  row "$lbl" "deliveries/s" "$(num "$(jget "$f" deliveries_per_s)")" "$tgt_rate"
  row "$lbl" "per device p50 / p99 / max" "$(jget "$f" p50_ms) / $(jget "$f" p99_ms) / $(jget "$f" max_ms) ms" "-"
  row "$lbl" "raw floor deliveries/s" "$(num "$(jget "$fl" deliveries_per_s)")" "-"
  row "$lbl" "ratio to the floor" "$(dash "$(jget "$f" ratio_to_floor)")" "$tgt_ratio"
  row "$lbl" "daemon peak RSS (VmHWM)" "$(jget "$f" rss_peak_mib) MiB" "$tgt_rss"
  row "$lbl" "of which anonymous (RssAnon, peak while running)" "$(jget "$f" rss_anon_peak_mib) MiB" "-"
  row "$lbl" "engine commits (fsyncs) per run / floor's" "$(jget "$f" commits) / $(jget "$fl" commits)" "-"
  row "$lbl" "LMDB bytes per delivery" "$(jget "$f" lmdb_bytes_per_delivery)" "-"
done
pg=$(line pgqueue)
if [ -n "$pg" ]; then
  pgn=$(jget "$pg" devices); f=$(line fanout devices "${pgn:-none}")
  [ -z "$f" ] && f=$(line fanout devices "$BIG")
  pr=$(jget "$pg" deliveries_per_s); fr=$(jget "$f" deliveries_per_s)
  ratio=$(awk -v a="$fr" -v b="$pr" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", a / b; else print "-" }')
  row "PostgreSQL queue" "deliveries/s ($(num "${pgn:-0}") devices)" "$(num "$pr")" "-"
  row "PostgreSQL queue" "fusebox / PostgreSQL" "$ratio" ">= 25x"
else
  row "PostgreSQL queue" "fusebox / PostgreSQL" "(bench/pg.sh not present)" ">= 25x"
fi
i=$(line intake)
if [ -n "$i" ]; then
  row "intake, $(jget "$i" clients) clients" "commands/s (single device, durable ack)" "$(num "$(jget "$i" commands_per_s)")" ">= 50,000/s"
  row "intake, $(jget "$i" clients) clients" "submit -> durable ack p50 / p99" "$(jget "$i" p50_ms) / $(jget "$i" p99_ms) ms" "p99 <= 10 ms"
  row "intake, $(jget "$i" clients) clients" "daemon CPU per command" "$(jget "$i" daemon_cpu_us_per_command) us" "-"
else
  row "intake" "(failed)" "-" "-"
fi
fa=$(line fairness)
if [ -n "$fa" ]; then
  lbl="fairness, A $(num "$(jget "$fa" devices_a)")"
  tgt="-"
  [ "$(jget "$fa" devices_a)" = 1000000 ] && tgt="p99 <= 50 ms"
  row "$lbl" "B time to result p50 / p99 (created -> recorded)" "$(jget "$fa" b_p50_ms) / $(jget "$fa" b_p99_ms) ms" "$tgt"
  row "$lbl" "B p99 from the client's send" "$(jget "$fa" b_send_to_result_p99_ms) ms" "-"
  row "$lbl" "A deliveries/s meanwhile" "$(num "$(jget "$fa" a_deliveries_per_s)")" "-"
else
  row "fairness" "(failed)" "-" "-"
fi
for s in $STORMS; do
  b=$(line breaker storm_s "$s")
  lbl="breaker, 32,000 locks in $s s"
  if [ -z "$b" ]; then row "$lbl" "(failed)" "-" "-"; continue; fi
  row "$lbl" "devices locked: total (org-001 / max other org)" "$(jget "$b" locked_total) ($(jget "$b" locked_org001) / $(jget "$b" locked_other_max))" "-"
  row "$lbl" "admitted / held" "$(num "$(jget "$b" admitted)") / $(num "$(jget "$b" held)")" "-"
  row "$lbl" "first lock -> global trip" "$(jget "$b" first_lock_to_global_trip_ms) ms" "-"
  row "$lbl" "storm submitted in" "$(num "$(jget "$b" storm_elapsed_ms)") ms" "-"
done

# render_text / render_md: the same rows, aligned
render_text() {
  awk -F '\t' 'BEGIN { h[1]="benchmark"; h[2]="figure"; h[3]="result"; h[4]="target" }
    { for (i = 1; i <= 4; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END { for (i = 1; i <= 4; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
      fmt = "%-" w[1] "s  %-" w[2] "s  %" w[3] "s  %-" w[4] "s\n"
      printf fmt, h[1], h[2], h[3], h[4]
      printf fmt, substr(dashes(w[1]),1), dashes(w[2]), dashes(w[3]), dashes(w[4])
      for (r = 1; r <= NR; r++) printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4] }
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
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CMD="bash bench/run.sh$([ "$QUICK" = 1 ] && echo ' --quick')"
ELAPSED=$(( $(date +%s) - START ))

echo
echo "fusebox benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), commit $REV"
echo "machine: $MACHINE"
echo "runs per figure: $RUNS (median); elapsed ${ELAPSED} s"
echo
render_text
echo
cat "$OUT/results.jsonl"

if [ "$DOC" = 1 ]; then
  DOCF=docs/benchmarks.md
  BLOCK="$OUT/block.md"
  {
    echo "<!-- bench:begin (written by bench/run.sh; do not edit by hand) -->"
    echo
    echo "Measured $(date -u +%Y-%m-%d) at commit \`$REV\`$([ "$QUICK" = 1 ] && echo ' (quick run: 1 run, smaller sizes)')."
    echo "Machine: $MACHINE."
    echo "Each figure is the median of $RUNS runs; the run took ${ELAPSED} s."
    echo "Reproduce with \`$CMD\`."
    echo
    render_md
    echo
    echo "The JSON lines of this run:"
    echo
    echo '```'
    cat "$OUT/results.jsonl"
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
