#!/usr/bin/env bash
# demo.sh: fusebox's main job on an embedded default, end to end.
#  1. start fuseboxd on a fresh LMDB directory and local ipc endpoints;
#  2. enroll a simulated fleet of 32,000 devices in 40 organisations
#     (20,000 in org-001, as in the 2021 incident) and connect it as a
#     gateway (2 ms device latency, 1% failures, 2% offline devices that
#     check in later);
#  3. operators submit commands: one device, one group, and an OS update
#     to every device of every organisation; print what happened per
#     organisation;
#  4. the incident: a broken attestation rule fires 32,000 automatic locks
#     in 10 seconds; the breakers trip and hold; an operator resets them
#     with discard; print how many devices were actually locked.
# Everything lives in a temporary directory that is removed at the end
# (FUSEBOX_DEMO_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc 2>/dev/null || echo 2)" \
  --target fuseboxd fuseboxctl fusebox-devsim >/dev/null
BIN="$PWD/build/default/dispatcher"

D=$(mktemp -d /tmp/fusebox-demo.XXXXXX)
export FUSEBOX_CONSOLE="ipc://$D/console.sock"
GATEWAY="ipc://$D/gateway.sock"
EVENTS="ipc://$D/events.sock"
ORGS=40
DEVICES=32000
DPID=""; SPID=""
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
  if [ -z "${FUSEBOX_DEMO_KEEP:-}" ]; then rm -rf "$D"; else echo "kept: $D"; fi
}
trap cleanup EXIT
ctl() { "$BIN/fuseboxctl" -a "${ACTOR:-operator}" "$@"; }
step() { printf '\n=== %s\n' "$*"; }
now_ms() { date +%s%3N; }

step "start fuseboxd (store $D/db, fully durable)"
"$BIN/fuseboxd" --data "$D/db" --console "$FUSEBOX_CONSOLE" \
  --gateway "$GATEWAY" --events "$EVENTS" \
  --alert-cmd "echo \"\$(date -u +%T) ALERT \$FUSEBOX_EVENT org=\$FUSEBOX_ORG reason=\$FUSEBOX_REASON: \$FUSEBOX_DETAIL\" >> $D/alerts.log" \
  > "$D/fuseboxd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do ctl -o org-001 status >/dev/null 2>&1 && break; sleep 0.1; done
ctl -o org-001 status | sed -n '1,3p'

step "enroll $DEVICES devices in $ORGS organisations (org-001: 20,000)"
SIM=("$BIN/fusebox-devsim" --console-endpoint "$FUSEBOX_CONSOLE"
     --gateway-endpoint "$GATEWAY" --devices "$DEVICES" --orgs "$ORGS"
     --org-skew 0.625 --seed 2021)
"${SIM[@]}" --enroll-only --quiet
ctl -o org-002 groups

step "connect the simulated fleet as a gateway"
"${SIM[@]}" --no-enroll --ack-latency-ms 2 --fail-ratio 0.01 \
  --offline-ratio 0.02 --checkin-interval-s 3 --report "$D/fleet.txt" \
  --stats-interval-s 0 --quiet > "$D/devsim.log" 2>&1 &
SPID=$!
sleep 1

step "operator: lock one device of org-007"
DEV=$(ctl -o org-007 devices --limit 1 --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
ID=$(ctl -o org-007 submit --type lock --device "$DEV" 2>/dev/null)
ctl -o org-007 submit --type lock --device "$DEV" --idempotency-key demo-lock-1 2>/dev/null >/dev/null || true
ctl -o org-007 show "$ID" --wait 30 2>/dev/null | head -12 || ctl -o org-007 show "$ID" | head -12

step "operator: install an app on group 'sales' of org-002"
ID=$(ctl -o org-002 submit --type install_app --group sales --payload '{"app":"com.example.crm"}' 2>/dev/null)
ctl -o org-002 show "$ID" --limit 0 | head -8

step "scheduled: OS update to every device of all $ORGS organisations"
T0=$(now_ms)
IDS=()
for i in $(seq -f "%03g" 1 "$ORGS"); do
  IDS+=("org-$i:$(ctl -o "org-$i" submit --type os_update --all --origin scheduled --payload '{"version":"15.2"}' 2>/dev/null)")
done
for pair in "${IDS[@]}"; do
  org=${pair%%:*}; id=${pair##*:}
  until ctl -o "$org" show "$id" --limit 0 --json 2>/dev/null | grep -q '"queued":0,"sent":0,"accepted":0'; do sleep 0.05; done
done
T1=$(now_ms)
echo "fan-out of $DEVICES deliveries, results durable: $((T1 - T0)) ms ($(( DEVICES * 1000 / (T1 - T0 + 1) )) deliveries/s, offline devices pending until they check in)"
sleep 4  # offline devices check in and receive their pending commands

step "what happened, per organisation"
ctl summary --orgs-prefix org- --count "$ORGS"

step "INCIDENT: the attestation service's certificate expires; the lock rule fires for every device: 32,000 automatic locks in 10 s"
"${SIM[@]}" --no-enroll --storm-only --storm "$DEVICES" --storm-seconds 10 \
  --storm-reason attestation_failed --storm-skew 0.625 \
  --report "$D/storm.txt" --quiet | tail -3
echo "--- alerts raised:"
head -5 "$D/alerts.log" 2>/dev/null || true
echo "   ($(wc -l < "$D/alerts.log" 2>/dev/null || echo 0) alerts in all)"
echo "--- breakers (as seen from org-001):"
ctl -o org-001 breaker status --reason attestation_failed
echo "--- held automatic locks in org-001: $(ctl -o org-001 held --limit 1 --json | sed -n 's/.*"total":\([0-9]*\).*/\1/p')"

step "operator alice resets the breakers and discards what they held"
ACTOR=alice ctl -o org-001 breaker reset --global --reason attestation_failed --discard \
  --note "attestation provider certificate expired: false positives"
for i in $(seq -f "%03g" 1 "$ORGS"); do
  ACTOR=alice ctl -o "org-$i" breaker reset --reason attestation_failed --discard \
    --note "attestation certificate expired" >/dev/null 2>&1 || true
done
sleep 2

step "automatic locks per organisation: submitted by the rule, held, and devices actually locked"
ctl summary --orgs-prefix org- --count "$ORGS" --type lock --origin automatic
kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
awk '/^org=/{for(i=1;i<=NF;i++){split($i,a,"=");v[a[1]]=a[2]}; s+=v["locked"]} END{printf "devices actually locked by the storm: %d of %d automatic locks fired\n", s, 32000}' "$D/fleet.txt"
