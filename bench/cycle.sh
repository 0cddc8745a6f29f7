#!/usr/bin/env bash
# cycle.sh: where an intake commit cycle's time goes, engine and floor
# alternately. Starts bench_intake (the engine) or bench_intake --floor,
# and once it is under load records the syscalls of its committing thread
# for one second with perf's tracepoints (poll, pwrite64, writev,
# fdatasync). A cycle runs from a poll that follows a commit to the next
# one; per cycle it prints the mean time waiting in poll, writing pages
# (pwrite64 before the fdatasync, and their count; writev), in fdatasync,
# writing the meta page (the pwrite64 after it: LMDB's meta page goes
# through a descriptor opened O_DSYNC, a second device flush) and the
# rest (CPU: the turn's work). Needs perf (Debian: linux-perf) and root
# or perf_event_paranoid <= 1. Nothing passes or fails on time.
#
#   bash bench/cycle.sh [--clients K] [--inflight M] [--pairs P]
#                       [--bench DIR] [--bin DIR]
#
# Defaults: 8 clients x 1 in flight, 3 pairs, the release build's
# programs (build/release/bench, build/release/dispatcher).
set -uo pipefail
cd "$(dirname "$0")/.."
K=8; M=1; PAIRS=3
BIN=build/release/bench
DBIN=build/release/dispatcher
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) K=$2; shift 2 ;;
    --inflight) M=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --bench) BIN=$2; shift 2 ;;
    --bin) DBIN=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cycle.sh: unknown argument '$1'" >&2; exit 64 ;;
  esac
done
command -v perf >/dev/null || { echo "cycle.sh: perf missing (apt-get install linux-perf)" >&2; exit 69; }
for f in "$BIN/bench_intake" "$DBIN/fuseboxd"; do
  [ -x "$f" ] || { echo "cycle.sh: $f missing (cmake --preset release && cmake --build --preset release)" >&2; exit 66; }
done
DBIN=$(cd "$DBIN" && pwd)
TMP=$(mktemp -d /tmp/fbx-cycle.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# summarize - perf script lines on stdin -> one line of per-cycle means
summarize() {
  python3 -c '
import re, sys
ev = []
for l in sys.stdin:
    m = re.search(r"\s(\d+\.\d+):\s+syscalls:sys_(enter|exit)_(\w+):", l)
    if m:
        ev.append((float(m.group(1)), m.group(2), m.group(3)))
keys = ("poll", "pwrite", "npw", "writev", "fdatasync", "meta")
def fresh(t):
    d = dict.fromkeys(keys, 0.0)
    d["begin"] = t
    return d
cur, done, opened, synced = None, [], {}, False
for t, ph, name in ev:
    if ph == "enter":
        opened[name] = t
        continue
    if name not in opened:
        continue
    d = t - opened.pop(name)
    if cur is None:
        if name == "poll" and synced:
            cur = fresh(t)
        if name == "fdatasync":
            synced = True
        continue
    if name == "fdatasync":
        cur["fdatasync"] += d
        cur["synced"] = 1
    elif name == "pwrite64":
        if "synced" in cur:
            cur["meta"] += d
        else:
            cur["pwrite"] += d
            cur["npw"] += 1
    elif name == "writev":
        cur["writev"] += d
    elif name == "poll":
        cur["poll"] += d
        if "synced" in cur and cur["meta"] > 0:
            cur["end"] = t
            done.append(cur)
            cur = fresh(t)
n = len(done)
if n == 0:
    print("no complete cycle recorded")
    sys.exit(0)
ms = lambda k: sum(c[k] for c in done) / n * 1e3
cyc = sum(c["end"] - c["begin"] for c in done) / n * 1e3
rest = cyc - ms("poll") - ms("pwrite") - ms("writev") - ms("fdatasync") - ms("meta")
print("%d cycles, %.3f ms each: poll %.3f, pages %.3f (%.1f pwrite64) + "
      "writev %.3f, fdatasync %.3f, meta page %.3f, rest (CPU) %.3f" %
      (n, cyc, ms("poll"), ms("pwrite"), sum(c["npw"] for c in done) / n,
       ms("writev"), ms("fdatasync"), ms("meta"), rest))
'
}

one() { # one SIDE (floor|engine)
  local side=$1 args=() pid="" comm
  [ "$side" = floor ] && args=(--floor)
  FBX_BIN_DIR="$DBIN" "$BIN/bench_intake" --clients "$K" --inflight "$M" \
    --seconds 8 --runs 1 "${args[@]}" >"$TMP/$side.log" 2>&1 &
  local bpid=$!
  [ "$side" = floor ] && comm=bench_intake_fl || comm=fuseboxd
  sleep 5
  pid=$(pgrep -n -x "$comm")
  if [ -z "$pid" ]; then
    echo "$side: no $comm process"; wait "$bpid"; return
  fi
  perf record -q -o "$TMP/$side.data" -t "$pid" \
    -e syscalls:sys_enter_poll -e syscalls:sys_exit_poll \
    -e syscalls:sys_enter_pwrite64 -e syscalls:sys_exit_pwrite64 \
    -e syscalls:sys_enter_writev -e syscalls:sys_exit_writev \
    -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync \
    -- sleep 1 >/dev/null 2>&1
  wait "$bpid"
  printf '%-6s %s; %s\n' "$side" \
    "$(perf script -i "$TMP/$side.data" 2>/dev/null | summarize)" \
    "$(grep -o '[0-9]* commands/s' "$TMP/$side.log" | head -n 1)"
}

echo "intake commit cycle, $K clients x $M in flight, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$PAIRS"); do
  echo "pair $i"
  one floor
  one engine
done
