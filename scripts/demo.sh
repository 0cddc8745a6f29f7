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
#  4. the incident: the attestation rule first locks one device per
#     organisation for cause; 10 s later it breaks and fires 32,000
#     automatic locks in 10 seconds; they settle, the breakers trip
#     within the settle window and hold every one: 0 devices locked by
#     the storm, while the legitimate locks go out after their 30 s;
#     the web console's address (fuseboxd --http, a session minted by
#     'fuseboxctl web login') is printed while the incident is on screen
#     (FUSEBOX_DEMO_SCREENSHOT=FILE.png: also a headless-Chromium
#     screenshot of it);
#  5. the one-command incident rollback: every storm lock of the
#     incident, in all 40 organisations, discarded by one 'fuseboxctl
#     rollback'; the legitimate locks, from before the incident's onset,
#     are listed apart and left; the breakers are re-armed; the audit
#     chain is verified.
# Everything lives in a temporary directory that is removed at the end
# (FUSEBOX_DEMO_KEEP=1 keeps it). Exit 0 when every step did what it
# should.
set -euo pipefail
cd "$(dirname "$0")/.."
now_ms() { date +%s%3N; }
START_T0=$(now_ms)
bash scripts/deps.sh
# the build shows its progress: on a fresh clone it is most of the wait
echo "=== build (build/default; the first time takes a while, then seconds)"
set +e
cmake --preset default > /tmp/fusebox-demo-configure.$$ 2>&1
st=$?
[ $st -eq 0 ] || cat /tmp/fusebox-demo-configure.$$ >&2
rm -f /tmp/fusebox-demo-configure.$$
if [ $st -eq 0 ]; then
  cmake --build --preset default -j "$(nproc 2>/dev/null || echo 2)" \
    --target fuseboxd fuseboxctl fusebox-devsim 2>&1 |
    grep --line-buffered -vE '^(gmake|make)\[[0-9]+\]: (Entering|Leaving)'
  st=${PIPESTATUS[0]}
fi
set -e
[ $st -eq 0 ] || { echo "demo: build failed" >&2; exit 1; }
BUILD_S=$(( ($(now_ms) - START_T0) / 1000 ))
BIN="$PWD/build/default/dispatcher"
export PATH="$BIN:$PATH" # so that a command shown is the command run

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
# each operator acts with their own key: the engine takes the actor from it
ctl() { "$BIN/fuseboxctl" --key "$KEYS/${ACTOR:-admin}.key" "$@"; }
step() { printf '\n=== %s\n' "$*"; }
# clip: long lines shortened at a word boundary, never mid-word
clip() {
  awk -v w="${1:-150}" '{
    if (length($0) <= w) { print; next }
    s = substr($0, 1, w); sub(/ +[^ ]*$/, "", s); print s " ..." }'
}
# run_shown CMD...: print the command exactly as run, then run it
# (on stderr, so that it shows when stdout goes to a file)
run_shown() {
  local a line='$'
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then line+=" $a"
    else line+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "$line" >&2
  "$@"
}
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

step "keys: the engine's, an admin's, operators alice and bob, the gateway, the attestation rule"
KEYS="$D/db/keys"
"$BIN/fuseboxd" init --data "$D/db" \
  --principal "alice/operator/all/*" --principal "bob/operator/all/*" \
  --principal "gw/gateway/-/*" \
  --principal "attestation-rule/automation/all/*" > "$D/init.log"
export FUSEBOX_SERVER_KEY="$KEYS/server.pub" FUSEBOX_KEY="$KEYS/admin.key" \
  FUSEBOX_GATEWAY_KEY="$KEYS/gw.key" FUSEBOX_STORM_KEY="$KEYS/attestation-rule.key"
ls "$KEYS"

step "start fuseboxd (store $D/db, fully durable)"
"$BIN/fuseboxd" --data "$D/db" --console "$FUSEBOX_CONSOLE" \
  --gateway "$GATEWAY" --events "$EVENTS" --http 127.0.0.1:0 \
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

step "the attestation rule's legitimate locks: one device per organisation really failed attestation"
# they settle for 30 s before release (the default settle window): a
# storm that starts meanwhile trips the breakers and is held, these
# were submitted before its onset and go out on time
BASE_DEVS="$D/baseline.txt"; : > "$BASE_DEVS"
for i in $(seq -f "%03g" 1 "$ORGS"); do
  dev=$(ctl -o "org-$i" devices --limit 1 --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
  id=$(ACTOR=attestation-rule ctl -o "org-$i" submit --type lock --origin automatic \
    --reason "$REASON" --device "$dev" --idempotency-key "baseline-$i" 2>/dev/null) ||
    die "baseline lock for org-$i refused"
  [ "$i" = 002 ] && BASE_ID=$id
  echo "org-$i $dev" >> "$BASE_DEVS"
done
ctl -o org-002 show "$BASE_ID" --limit 0 | grep -E '^(command|type|origin|reason|state|settle_until|note) '
sleep 10 # the rule's usual pace: the storm comes later

step "INCIDENT: the attestation service's certificate expires; the lock rule fires for every device: 32,000 automatic locks in 10 s"
"${SIM[@]}" --no-enroll --storm-only --storm "$DEVICES" --storm-seconds 10 \
  --storm-reason "$REASON" --storm-skew 0.625 --stats-interval-s 2 \
  --report "$D/storm.txt" --quiet | grep -E '^storm_(org=org-001|total)'
echo "--- alerts raised:"
grep -v command_settled "$D/alerts.log" 2>/dev/null | head -5 | clip 150 || true
echo "   ($(wc -l < "$D/alerts.log" 2>/dev/null || echo 0) alerts in all)"
echo "--- breakers that tripped, and the global one (SETTLING: in their settle window; HELD: held):"
ctl breaker status --all-orgs --reason "$REASON" | clip 150 | sed -n '1,6p'
echo "..."
ctl breaker status --all-orgs --reason "$REASON" | tail -1
STORM_ID=$(ctl -o org-001 held --limit 1 --json | sed -n 's/.*"id":\([0-9]*\),.*/\1/p' | head -1)
echo "--- one of the storm's locks, admitted to settle and held when the breakers tripped:"
ctl -o org-001 show "$STORM_ID" --limit 0 | grep -E '^(command|state|held_by|note) ' | clip 150
# the web console (issue 12): the same incident, live in a browser
WEB_URL=$(ctl -o org-001 web login --note "demo: the incident on screen" 2>/dev/null) || WEB_URL=""
echo "--- the web console shows it live (open this in a browser on this host while the demo runs; the session is the admin's, audited as web.login):"
echo "    ${WEB_URL:-(not available: fuseboxd was built without FBX_HTTP)}"
if [ -n "${FUSEBOX_DEMO_SCREENSHOT:-}" ] && [ -n "$WEB_URL" ] && command -v chromium >/dev/null; then
  timeout 60 chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$D/chromium" --virtual-time-budget=10000 --window-size=1280,1600 \
    --screenshot="$FUSEBOX_DEMO_SCREENSHOT" "$WEB_URL" >/dev/null 2>&1 &&
    echo "    (screenshot of it: $FUSEBOX_DEMO_SCREENSHOT)"
fi

step "the settle window: wait until the legitimate locks are released (30 s after they were submitted)"
for _ in $(seq 300); do
  ctl breaker status --all-orgs --reason "$REASON" --json | grep -q '"settling":[1-9]' || break
  sleep 0.1
done
fresh_report; fresh_report
ctl summary --all-orgs --type lock --origin automatic > "$D/locks.txt"
sed -n '1,4p' "$D/locks.txt"; echo "...   (40 rows)"; tail -3 "$D/locks.txt"
LOCKED_BEFORE=$(locked_now_total "$D/fleet.txt")
BASE_LOCKED=$(wc -l < "$BASE_DEVS")
echo "devices locked now, from the simulator's report: $LOCKED_BEFORE (the $BASE_LOCKED legitimate locks at most; of $DEVICES automatic locks fired by the storm, 0 reached a device)"
[ "$LOCKED_BEFORE" -le "$BASE_LOCKED" ] || die "$LOCKED_BEFORE devices locked: the storm reached devices"

step "ONE-COMMAND INCIDENT ROLLBACK, the plan: what the breaker of '$REASON' admitted from the incident's onset, in every organisation"
ctl -o org-001 rollback --incident "$REASON" --global > "$D/plan.txt" 2> "$D/plan.err"
echo "($(grep -c 'rollback slice' "$D/plan.err") slices of at most 1,000 commands, each its own short transaction)"
sed -n '1,8p' "$D/plan.txt" | clip 150; echo "...   (40 rows)"
sed -n '/^TOTAL/,/^before onset/p' "$D/plan.txt" | clip 150

step "ONE-COMMAND INCIDENT ROLLBACK, executed by bob: the storm's held locks are discarded, the legitimate ones left"
RB0=$(now_ms)
run_shown fuseboxctl --key "$KEYS/bob.key" -o org-001 rollback --incident "$REASON" --global \
  --execute --wait 60 \
  --note "attestation certificate expired: discard the storm's locks" > "$D/rollback.txt" 2> "$D/rollback.err"
RB1=$(now_ms)
sed -n '1,8p' "$D/rollback.txt" | clip 150; echo "...   (40 rows)"
sed -n '/^TOTAL/,$p' "$D/rollback.txt" | clip 150
echo "(the command took $((RB1 - RB0)) ms from the shell, process start included)"
HELD_AFTER=$(ctl -o org-001 held --limit 1 --json | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
echo "automatic locks still held in org-001: ${HELD_AFTER:-0}"
[ "${HELD_AFTER:-0}" -eq 0 ] || die "the rollback left held commands"

step "operator alice re-arms the breakers (nothing left to release)"
ACTOR=alice ctl -o org-001 breaker reset --global --reason "$REASON" --discard \
  --note "attestation certificate renewed; storm discarded by rollback" | head -1
n=0
for i in $(seq -f "%03g" 1 "$ORGS"); do
  if ACTOR=alice ctl -o "org-$i" breaker reset --reason "$REASON" --discard \
       --note "attestation certificate renewed" > "$D/reset.txt" 2>/dev/null; then
    n=$((n + 1))
  fi
done
echo "($n organisation breakers reset; the others never tripped)"
echo "--- the audit log of org-001 records who did what, with the key's identity:"
ctl -o org-001 audit list --action breaker | clip 160 | tail -4

step "devices locked now, from the simulator's report (the simulator stops and writes its final report)"
stop "$SPID"; SPID=""
report_table "$D/fleet.txt" > "$D/locked.txt"
sed -n '1,4p' "$D/locked.txt"; echo "...   (40 rows)"; tail -1 "$D/locked.txt"
LOCKED_AFTER=$(locked_now_total "$D/fleet.txt")
echo "devices locked: $LOCKED_AFTER, all of them by the rule's $BASE_LOCKED legitimate locks (a device offline then gets its lock when it checks in)"

step "the audit chain"
ctl audit verify
echo "--- the rollback in org-001's audit log: one record per slice, then the rollback itself (its totals, and the organisations' names as far as its 511 bytes hold; the rest in rollback.orgs records):"
ctl -o org-001 audit list --action rollback | grep -v '^$' | clip 160 | tail -4

step "fleet check-in health of org-002 (incident 4: devices that stop checking in; incident 5: outcomes by type)"
ctl -o org-002 fleet rule set --stale 1440m --repeat 60m --note "incident 4's rules" >/dev/null
ctl -o org-002 fleet rule set --stale 2880m --repeat 60m --note "incident 4's rules" >/dev/null
ctl -o org-002 fleet | grep -v '^$'
echo "--- devices without a check-in for a minute or more, with what waits for them (none yet: the demo enrolled them less than a minute ago and the simulator stopped seconds ago; a minute after a device's last check-in it is listed here):"
ctl -o org-002 devices --stale 1m --limit 3 | clip 150

step "in short"
STORM=$(grep '^storm_total' "$D/storm.txt")
sv() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<< "$STORM"; }
cat <<EOF
fan-out:   $DEVICES OS-update deliveries in $FANOUT_MS ms ($(( DEVICES * 1000 / (FANOUT_MS + 1) ))/s)
storm:     $(sv submitted) automatic locks submitted: the breakers tripped within their settle window and held every one
locked:    0 devices by the storm; $LOCKED_AFTER by the rule's $BASE_LOCKED legitimate locks, released after their 30 s settle window
rollback:  one command, every organisation: the storm's locks discarded, the legitimate ones left (listed before the onset)
total:     demo ran $(( ($(now_ms) - DEMO_T0) / 1000 )) s after a build of $BUILD_S s ($(( ($(now_ms) - START_T0) / 1000 )) s in all)
EOF
[ "$LOCKED_AFTER" -le "$BASE_LOCKED" ] || die "$LOCKED_AFTER devices are locked"
