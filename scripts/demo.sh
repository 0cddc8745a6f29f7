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
#     with discard; print how many devices were actually locked;
#  5. the one-command rollback: every automatic lock of the incident, in
#     all 40 organisations, undone by one 'fuseboxctl rollback'; the
#     simulator's report shows no device locked any more; the audit
#     chain is verified.
# Everything lives in a temporary directory that is removed at the end
# (FUSEBOX_DEMO_KEEP=1 keeps it). Exit 0 when every step did what it
# should.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc 2>/dev/null || echo 2)" \
  --target fuseboxd fuseboxctl fusebox-devsim >/dev/null
BIN="$PWD/build/default/dispatcher"

D=$(mktemp -d /tmp/fusebox-demo.XXXXXX)
export FUSEBOX_CONSOLE="ipc://$D/console.sock"
unset FUSEBOX_ORG
GATEWAY="ipc://$D/gateway.sock"
EVENTS="ipc://$D/events.sock"
ORGS=40
DEVICES=32000
REASON=attestation_failed
DPID=""; SPID=""
stop() { # stop PID: TERM, then wait for it
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$SPID"; SPID=""
  stop "$DPID"; DPID=""
  if [ -z "${FUSEBOX_DEMO_KEEP:-}" ]; then rm -rf "$D"; else echo "kept: $D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ctl() { "$BIN/fuseboxctl" -a "${ACTOR:-operator}" "$@"; }
step() { printf '\n=== %s\n' "$*"; }
now_ms() { date +%s%3N; }
die() { echo "demo: $*" >&2; exit 1; }
DEMO_T0=$(now_ms)

# settled ORG ID: the command is expanded and none of its deliveries is
# queued, sent or accepted (pending ones wait for their device).
settled() {
  local j
  j=$(ctl -o "$1" show "$2" --limit 0 --json 2>/dev/null) || return 1
  [[ $j == *'"state":"active"'* || $j == *'"state":"done"'* ]] &&
    [[ $j == *'"queued":0,"sent":0,"accepted":0'* ]]
}

# report_table FILE: the simulator's lock state per organisation.
report_table() {
  awk '/^org=/{
      for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]}
      printf "%-8s  %-8s  %-10s  %-10s  %s\n", v["org"], v["devices"], v["locked"], v["unlocked"], v["locked_now"]
      d+=v["devices"]; l+=v["locked"]; u+=v["unlocked"]; n+=v["locked_now"]
    }
    BEGIN{printf "%-8s  %-8s  %-10s  %-10s  %s\n", "ORG", "DEVICES", "GOT_LOCK", "GOT_UNLOCK", "LOCKED_NOW"}
    END{printf "%-8s  %-8s  %-10s  %-10s  %s\n", "TOTAL", d, l, u, n}' "$1"
}
locked_now_total() {
  awk '/^org=/{for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="locked_now") s+=a[2]}} END{print s+0}' "$1"
}
# fresh_report: the simulator rewrites its report every second; wait
# for one written after now.
fresh_report() { sleep 1.5; }

step "start fuseboxd (store $D/db, fully durable)"
"$BIN/fuseboxd" --data "$D/db" --console "$FUSEBOX_CONSOLE" \
  --gateway "$GATEWAY" --events "$EVENTS" \
  --alert-cmd "echo \"\$(date -u +%T) ALERT \$FUSEBOX_EVENT org=\$FUSEBOX_ORG reason=\$FUSEBOX_REASON: \$FUSEBOX_DETAIL\" >> $D/alerts.log" \
  > "$D/fuseboxd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status | sed -n '1,3p'

step "enroll $DEVICES devices in $ORGS organisations (org-001: 20,000)"
SIM=("$BIN/fusebox-devsim" --console-endpoint "$FUSEBOX_CONSOLE"
     --gateway-endpoint "$GATEWAY" --devices "$DEVICES" --orgs "$ORGS"
     --org-skew 0.625 --seed 2021)
"${SIM[@]}" --enroll-only --quiet
ctl orgs > "$D/orgs.txt"
sed -n '1,4p' "$D/orgs.txt"; echo "...   (40 rows)"; grep '^TOTAL' "$D/orgs.txt"
echo "groups of org-002:"
ctl -o org-002 groups

step "connect the simulated fleet as a gateway"
"${SIM[@]}" --no-enroll --ack-latency-ms 2 --fail-ratio 0.01 \
  --offline-ratio 0.02 --checkin-interval-s 3 --report "$D/fleet.txt" \
  --stats-interval-s 1 --quiet > "$D/devsim.log" 2>&1 &
SPID=$!
for _ in $(seq 50); do
  ctl status --json 2>/dev/null | grep -q '"gateways":[1-9]' && break; sleep 0.1
done
ctl status | grep gateways

step "operator: lock one device of org-007 (reported lost), unlock it when found"
DEV=$(ctl -o org-007 devices --limit 1 --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
ID=$(ctl -o org-007 submit --type lock --device "$DEV" --idempotency-key demo-lock-1 2>/dev/null)
ctl -o org-007 submit --type lock --device "$DEV" --idempotency-key demo-lock-1 --json 2>/dev/null |
  sed -n 's/.*"command_id":\([0-9]*\),"duplicate":\([a-z]*\).*/retried with the same idempotency key: command \1, duplicate=\2/p'
for _ in $(seq 100); do settled org-007 "$ID" && break; sleep 0.1; done
ctl -o org-007 show "$ID" --limit 1 | grep -E '^(command|type|state|counts) |DELIVERY|org-007-'
ctl -o org-007 submit --type unlock --device "$DEV" --wait 30 2>/dev/null | sed -n '1s/^/unlock: command /p;/succeeded/p'

step "operator: install an app on group 'sales' of org-002"
ID=$(ctl -o org-002 submit --type install_app --group sales --payload '{"app":"com.example.crm"}' 2>/dev/null)
for _ in $(seq 100); do settled org-002 "$ID" && break; sleep 0.1; done
ctl -o org-002 show "$ID" --limit 0 | grep -E '^(command|type|target|state|deliveries|counts) '

step "scheduled: OS update to every device of all $ORGS organisations"
T0=$(now_ms)
IDS=()
for i in $(seq -f "%03g" 1 "$ORGS"); do
  IDS+=("org-$i:$(ctl -o "org-$i" submit --type os_update --all --origin scheduled --payload '{"version":"15.2"}' 2>/dev/null)")
done
T_SUB=$(now_ms)
for pair in "${IDS[@]}"; do
  org=${pair%%:*}; id=${pair##*:}
  DL=$(( $(now_ms) + 60000 ))
  until settled "$org" "$id"; do
    [ "$(now_ms)" -lt "$DL" ] || die "os_update $id of $org not settled after 60 s"
    sleep 0.05
  done
done
T1=$(now_ms)
FANOUT_MS=$((T1 - T0))
echo "$ORGS commands submitted in $((T_SUB - T0)) ms"
echo "fan-out of $DEVICES deliveries, results durable: $FANOUT_MS ms ($(( DEVICES * 1000 / (FANOUT_MS + 1) )) deliveries/s; offline devices pending until they check in)"
sleep 4  # offline devices check in and receive their pending commands

step "what happened, per organisation"
ctl summary --all-orgs | tee "$D/summary.txt" | sed -n '1,6p'
echo "...   (40 rows)"
tail -1 "$D/summary.txt"

step "INCIDENT: the attestation service's certificate expires; the lock rule fires for every device: 32,000 automatic locks in 10 s"
"${SIM[@]}" --no-enroll --storm-only --storm "$DEVICES" --storm-seconds 10 \
  --storm-reason "$REASON" --storm-skew 0.625 \
  --report "$D/storm.txt" --quiet | grep -E '^storm_(org=org-001|total)'
echo "--- alerts raised:"
head -5 "$D/alerts.log" 2>/dev/null || true
echo "   ($(wc -l < "$D/alerts.log" 2>/dev/null || echo 0) alerts in all)"
echo "--- breakers of every organisation that tripped, and the global one:"
ctl breaker status --all-orgs --reason "$REASON" | cut -c1-150
HELD1=$(ctl -o org-001 held --limit 1 --json | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
echo "--- automatic locks held in org-001: $HELD1"
[ "${HELD1:-0}" -gt 0 ] || die "no held command in org-001"

step "operator alice resets the breakers and discards what they held"
ACTOR=alice ctl -o org-001 breaker reset --global --reason "$REASON" --discard \
  --note "attestation provider certificate expired: false positives" | head -1
n=0
for i in $(seq -f "%03g" 1 "$ORGS"); do
  if ACTOR=alice ctl -o "org-$i" breaker reset --reason "$REASON" --discard \
       --note "attestation certificate expired" > "$D/reset.txt" 2>/dev/null; then
    n=$((n + 1)); head -1 "$D/reset.txt"
  fi
done
echo "($n organisation breakers were open; the others were never tripped)"
echo "--- the audit log of org-001 records who did it:"
ctl -o org-001 audit list --action breaker

step "automatic locks per organisation: submitted by the rule, held, and devices actually locked"
ctl summary --all-orgs --type lock --origin automatic > "$D/locks.txt"
sed -n '1,4p' "$D/locks.txt"; echo "...   (40 rows)"; tail -3 "$D/locks.txt"
fresh_report
LOCKED_BEFORE=$(locked_now_total "$D/fleet.txt")
echo "devices locked now, from the simulator's report: $LOCKED_BEFORE (of $DEVICES automatic locks fired)"
[ "$LOCKED_BEFORE" -gt 0 ] || die "the storm locked no device"

step "ONE-COMMAND ROLLBACK, the plan: every automatic '$REASON' lock of the incident, in every organisation"
ctl rollback --incident "$REASON" --global --all-orgs > "$D/plan.txt"
sed -n '1,7p' "$D/plan.txt"; echo "...   (40 rows)"; tail -3 "$D/plan.txt"

step "ONE-COMMAND ROLLBACK, executed by bob"
echo "\$ fuseboxctl rollback --incident $REASON --global --all-orgs --execute --wait"
RB0=$(now_ms)
ACTOR=bob ctl rollback --incident "$REASON" --global --all-orgs --execute --wait 60 \
  --note "attestation certificate expired: undo the automatic locks" > "$D/rollback.txt"
RB1=$(now_ms)
sed -n '1,7p' "$D/rollback.txt"; echo "...   (40 rows)"
sed -n '/^TOTAL/,$p' "$D/rollback.txt"
JOURNALED_MS=$(sed -n 's/^journaled: .*, \([0-9]*\) ms after.*/\1/p' "$D/rollback.txt")
SETTLED_MS=$(sed -n 's/^done: .* settled \([0-9]*\) ms after the rollback.*/\1/p' "$D/rollback.txt")
COMPENSATED=$(awk '/^TOTAL/{print $4}' "$D/rollback.txt")
echo "(the command took $((RB1 - RB0)) ms from the shell, process start included)"

# A device that fails a delivery fails that delivery every time it is
# sent again (the simulator is deterministic per delivery id, as an
# idempotent agent is): the operator sends those devices a fresh unlock.
RETRIED=0
sed -n 's/^  fuseboxctl -o \([^ ]*\) show \([0-9]*\) --state failed$/\1 \2/p' "$D/rollback.txt" > "$D/failed.txt"
for round in 1 2 3; do
  mapfile -t FAILED < "$D/failed.txt"
  [ ${#FAILED[@]} -gt 0 ] || break
  [ "$round" -eq 1 ] && step "the unlocks that failed on the device: a fresh unlock to those devices"
  : > "$D/failed.txt"
  for f in "${FAILED[@]}"; do
    org=${f% *}; id=${f#* }
    devs=$(ctl -o "$org" show "$id" --state failed --limit 10000 --json |
           grep -o '"device":"[^"]*"' | cut -d'"' -f4 | paste -sd, -)
    [ -n "$devs" ] || continue
    RETRIED=$((RETRIED + $(tr ',' '\n' <<< "$devs" | wc -l)))
    out=$(ACTOR=bob ctl -o "$org" submit --type unlock --device "$devs" --reason rollback-retry --wait 30 --json 2>/dev/null | tail -1)
    nid=$(sed -n 's/.*"command":{"id":\([0-9]*\),.*/\1/p' <<< "$out")
    nok=$(sed -n 's/.*"succeeded":\([0-9]*\).*/\1/p' <<< "$out")
    nf=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<< "$out")
    echo "$org: unlock $devs -> command $nid: $nok succeeded, $nf failed"
    [ "${nf:-0}" -eq 0 ] || echo "$org $nid" >> "$D/failed.txt"
  done
done

step "devices locked now, from the simulator's report (the simulator stops and writes its final report)"
stop "$SPID"; SPID=""
report_table "$D/fleet.txt" > "$D/locked.txt"
sed -n '1,4p' "$D/locked.txt"; echo "...   (40 rows)"; tail -1 "$D/locked.txt"
LOCKED_AFTER=$(locked_now_total "$D/fleet.txt")
NONZERO=$(awk 'NR>1 && $1!="TOTAL" && $5!=0' "$D/locked.txt" | wc -l)
echo "organisations with a device still locked: $NONZERO of $ORGS; devices still locked: $LOCKED_AFTER"

step "the audit chain"
ctl audit verify
ctl -o org-001 audit list --action rollback | cut -c1-160

step "in short"
STORM=$(grep '^storm_total' "$D/storm.txt")
sv() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<< "$STORM"; }
cat <<EOF
fan-out:   $DEVICES OS-update deliveries in $FANOUT_MS ms ($(( DEVICES * 1000 / (FANOUT_MS + 1) ))/s)
storm:     $(sv submitted) automatic locks submitted, $(sv admitted) admitted, $(sv held) held by the breakers
locked:    $LOCKED_BEFORE devices actually locked before the rollback
rollback:  one command, $ORGS organisations, $COMPENSATED unlocks journaled in ${JOURNALED_MS:-?} ms, all settled in ${SETTLED_MS:-?} ms; $RETRIED failed unlocks sent again
after:     $LOCKED_AFTER devices locked ($NONZERO organisations with a locked device)
total:     demo ran $(( ($(now_ms) - DEMO_T0) / 1000 )) s
EOF
[ "$LOCKED_AFTER" -eq 0 ] || die "$LOCKED_AFTER devices are still locked"
