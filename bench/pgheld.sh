#!/usr/bin/env bash
# pgheld.sh: a cluster node on PostgreSQL with a storm held by the global
# breaker. Starts a PostgreSQL of its own (tests/pg_cluster.sh), one
# fuseboxd --node n1 on it, enrolls DEVICES devices in 10 organisations,
# trips the global breaker of attestation_failed, submits a storm of
# STORM automatic locks (one per device, as fast as it goes: every one is
# held), then leaves the node idle for 30 s with them held. Prints the
# storm's rate, the turns slower than 500 ms meanwhile (the engine logs
# each at warn), status's turn_max_ms and rtt_ms, and one submit's time.
# Every lease tick of a cluster node looks at the commands held by a
# global breaker (a reset made on another node); that look once read two
# records per held command under the writers' lock. Nothing passes or
# fails on time: compare two builds with --bin.
#
#   bash bench/pgheld.sh [--bin DIR] [--devices N] [--storm N]
#
# Defaults: build/default/dispatcher, 20,000 devices, a storm of 20,000.
# Needs PostgreSQL's server binaries (scripts/deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
DBIN=build/default/dispatcher
DEVICES=20000
STORM=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) DBIN=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --storm) STORM=$2; shift 2 ;;
    *) echo "usage: bash bench/pgheld.sh [--bin DIR] [--devices N] [--storm N]" >&2; exit 64 ;;
  esac
done
DBIN=$(cd "$DBIN" && pwd) || exit 66
SRC=$(pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/fbx-pgheld.XXXXXX")
PGD=$(mktemp -u "${TMPDIR:-/tmp}/fbx-pgt.XXXXXX")
D=
cleanup() {
  [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  bash "$SRC/tests/pg_cluster.sh" stop "$PGD" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
URL=$(bash tests/pg_cluster.sh start "$PGD") || { echo "pgheld: PostgreSQL did not start" >&2; exit 69; }
export HOME=$W
"$DBIN/fuseboxd" init --data "$W/n1" --store "$URL" --principal 'gw/gateway/-/*' \
  --principal 'rules/automation/operator/*' >"$W/init.log" 2>&1 ||
  { cat "$W/init.log" >&2; exit 70; }
K=$W/n1/keys
export FUSEBOX_KEY=$K/admin.key FUSEBOX_SERVER_KEY=$K/server.pub \
  FUSEBOX_GATEWAY_KEY=$K/gw.key FUSEBOX_CONSOLE=ipc://$W/c.sock
"$DBIN/fuseboxd" --data "$W/n1" --store "$URL" --node n1 \
  --console "ipc://$W/c.sock" --gateway "ipc://$W/g.sock" 2>"$W/n1.log" &
D=$!
for _ in $(seq 300); do  # until it answers; hang guard: 30 s
  "$DBIN/fuseboxctl" -o org-001 status >/dev/null 2>&1 && break
  sleep 0.1
done
SIM=("$DBIN/fusebox-devsim" --devices "$DEVICES" --orgs 10 --quiet
     --console-endpoint "ipc://$W/c.sock" --gateway-endpoint "ipc://$W/g.sock")
"${SIM[@]}" --enroll-only >/dev/null || { echo "pgheld: enrolment failed" >&2; exit 70; }
"$DBIN/fuseboxctl" -o org-001 breaker trip --global --reason attestation_failed \
  --note "bench/pgheld.sh" >/dev/null || { echo "pgheld: trip failed" >&2; exit 70; }
"${SIM[@]}" --no-enroll --storm "$STORM" --storm-seconds 0 --storm-only \
  --storm-key "$K/rules.key" >"$W/storm.log" 2>&1
echo "fuseboxd: $DBIN/fuseboxd (file of $(date -u -r "$DBIN/fuseboxd" +%FT%TZ); this tree at $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)), load: $(cut -d' ' -f1-3 /proc/loadavg)"
grep storm_total "$W/storm.log"
s0=$(grep -c " turn: " "$W/n1.log")
sleep 30
s1=$(grep -c " turn: " "$W/n1.log")
echo "turns over 500 ms in 30 s idle with $STORM held: $((s1 - s0))"
"$DBIN/fuseboxctl" -o org-001 status | grep -E "^(commands_held|turn_max_ms|rtt_ms) "
t0=$(date +%s%N)
"$DBIN/fuseboxctl" -o org-002 submit --type query --device org-002-d000001 >/dev/null 2>&1
t1=$(date +%s%N)
echo "one submit: $(( (t1 - t0) / 1000000 )) ms"
