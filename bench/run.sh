#!/usr/bin/env bash
# run.sh: build the release preset (benchmarks on) and run every fusebox
# benchmark: fan-out with its raw floor, intake, fairness, breaker
# replay of incident 1 (issue 9), and the PostgreSQL queue when
# bench/pg.sh exists. Each figure is the median of 3 runs (--quick: 1 run,
# smaller sizes). Prints one aligned table and one JSON line per figure,
# and (full runs, or --doc) writes the table into docs/benchmarks.md
# between its markers. Targets are printed next to the figures; nothing
# passes or fails on time. The exit status is non-zero only when a
# benchmark program itself failed.
#
#   bash bench/run.sh [--quick] [--no-build] [--doc | --no-doc]
#                     [--breaker-only] [--breaker-600-off]
#
# Breaker (bench_breaker): storms of 1, 10, 60 and 600 s with the settle
# window on, 1, 10 and 60 s with it off (--breaker-600-off adds 600 s
# off; --quick: 1 and 10 s each way). Each length runs $RUNS times, 600 s
# once ($FBX_BENCH_BREAKER_RUNS overrides both). --breaker-only runs only
# these (and implies --no-doc: the doc block holds every benchmark).
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
ONLY_BREAKER=0
BREAKER_600_OFF=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --doc) DOC=1 ;;
    --no-doc) DOC=0 ;;
    --breaker-only) ONLY_BREAKER=1 ;;
    --breaker-600-off) BREAKER_600_OFF=1 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$a'" >&2; exit 64 ;;
  esac
done
[ "$DOC" = auto ] && DOC=$((1 - QUICK))
[ "$ONLY_BREAKER" = 1 ] && DOC=0

if [ "$QUICK" = 1 ]; then
  RUNS=1; FANOUT_SIZES="30000 100000 300000"; INTAKE_S=2
  FAIR_A=300000; STORMS_ON="1 10"; STORMS_OFF="1 10"
else
  RUNS=3; FANOUT_SIZES="30000 100000 1000000"; INTAKE_S=3
  FAIR_A=1000000; STORMS_ON="1 10 60 600"; STORMS_OFF="1 10 60"
  [ "$BREAKER_600_OFF" = 1 ] && STORMS_OFF="$STORMS_OFF 600"
fi
# brk_runs S: runs of a breaker storm of S s (a 600 s storm runs once)
brk_runs() {
  if [ -n "${FBX_BENCH_BREAKER_RUNS:-}" ]; then echo "$FBX_BENCH_BREAKER_RUNS"
  elif [ "$1" -ge 600 ]; then echo 1
  else echo "$RUNS"; fi
}
BIG=${FANOUT_SIZES##* }
JOBS=$(nproc 2>/dev/null || echo 2)
# $FBX_BENCH_BUILD_DIR: an existing build tree to use with --no-build
BUILD_DIR=${FBX_BENCH_BUILD_DIR:-$ROOT/build/release}
BIN="$BUILD_DIR/bench"
OUT="$BUILD_DIR/bench-results"
START=$(date +%s)

if [ "$BUILD" = 1 ]; then
  bash scripts/deps.sh || exit 1
  cmake --preset release >/dev/null || exit 1
  cmake --build --preset release -j "$JOBS" >/dev/null || {
    echo "run.sh: build failed" >&2; exit 1; }
fi
export FBX_BIN_DIR="$BUILD_DIR/dispatcher"
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

# bline SETTLE S: the summary line of the breaker run with the settle
# window SETTLE (on/off) and a storm of S s.
bline() {
  grep '"bench":"breaker"' "$OUT/results.jsonl" | grep "\"settle\":\"$1\"" |
    grep '"cert":false' | grep "\"storm_s\":$2," | head -n 1
}
# bcert: the run with the attestation certificate expiring at the storm
bcert() {
  grep '"bench":"breaker"' "$OUT/results.jsonl" | grep '"cert":true' | head -n 1
}

if [ "$ONLY_BREAKER" = 0 ]; then
for n in $FANOUT_SIZES; do
  bench "floor-$n" "$BIN/bench_floor" --devices "$n" --runs "$RUNS"
  fr=$(jget "$(line floor devices "$n")" deliveries_per_s)
  bench "fanout-$n" "$BIN/bench_fanout" --devices "$n" --runs "$RUNS" \
    ${fr:+--floor-rate "$fr"}
done
bench intake "$BIN/bench_intake" --runs "$RUNS" --seconds "$INTAKE_S"
bench fairness "$BIN/bench_fairness" --devices-a "$FAIR_A" --runs "$RUNS"
fi
for s in $STORMS_ON; do
  bench "breaker-on-$s" "$BIN/bench_breaker" --storm-seconds "$s" \
    --settle on --runs "$(brk_runs "$s")"
done
for s in $STORMS_OFF; do
  bench "breaker-off-$s" "$BIN/bench_breaker" --storm-seconds "$s" \
    --settle off --runs "$(brk_runs "$s")"
done
# the certificate the rule depends on expires as the storm starts: the
# engine trips the global breaker 5 s before (issue 9)
bench "breaker-cert-10" "$BIN/bench_breaker" --storm-seconds 10 \
  --settle on --cert --runs 1
if [ "$ONLY_BREAKER" = 0 ] && [ -f bench/pg.sh ]; then
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

if [ "$ONLY_BREAKER" = 0 ]; then
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
fi
# breaker: the targets of issue 9, per settle setting and storm length
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
}
# worst B: "org-007: 3 of 308 (0.97 %)", or "none"
worst() {
  if [ "$(jget "$1" worst_org)" = none ]; then echo "none"
  else echo "$(jget "$1" worst_org): $(jget "$1" worst_org_locked) of $(jget "$1" worst_org_fleet) ($(jget "$1" worst_org_pct) %)"; fi
}
for s in $STORMS_ON; do brk_rows on "$s"; done
for s in $STORMS_OFF; do brk_rows off "$s"; done
b=$(bcert)
if [ -n "$b" ]; then
  row "breaker, certificate expiring at a 10 s storm" "global trip -> storm start; devices locked by the storm" "$(( - $(jget "$b" storm_start_to_global_trip_ms) )) ms before; $(num "$(jget "$b" storm_locked_total)")" "tripped before expiry; 0 ($(jget "$b" target_zero_storm_locks))"
fi

# render_breaker: the incident-1 table of issue 9's closing note
render_breaker() {
  local b settle s
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
echo "Incident 1 replay (bench_breaker; storm commands = automatic, created from"
echo "the storm's start; counts from the engine's journal):"
echo
render_breaker
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
    echo "Incident 1 replay (\`bench_breaker\`):"
    echo
    render_breaker
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
