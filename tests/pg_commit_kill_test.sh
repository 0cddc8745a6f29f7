#!/usr/bin/env bash
# pg_commit_kill_test.sh: fuseboxd on PostgreSQL while the server ends
# the writer's session whenever its statement is COMMIT (a PL/pgSQL loop
# polling pg_stat_activity), under four consoles of keyed submits and a
# simulated gateway. Whatever each commit's fate (rolled back, committed
# with its answer lost: store_pg.c in_doubt), nothing is lost and
# nothing is done twice:
#   - every submit answers 0, 75 (IO, STORAGE: not recorded) or 69
#     (TIMEOUT "outcome unknown"); sent again with its key until it
#     succeeds, each ends recorded once: N commands per organisation;
#   - the simulator receives no delivery after its success was ACKed
#     as durable, and every command's delivery succeeds once.
# How many commits were in doubt is printed, not asserted (it depends on
# timing). Run by CTest under tests/pg_cluster.sh (FBX_TEST_PG_URL).
# FBX_KILL_NODE=NAME runs the daemon as a cluster node (--node NAME):
# its turns also take and renew organisation leases and are fenced.
set -u
B=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
URL=${FBX_TEST_PG_URL:?run under tests/pg_cluster.sh}
N=${FBX_KILL_SUBMITS:-100}
T=$(mktemp -d /tmp/fbx-pgkill.XXXXXX)
chmod 755 "$T"
pass=0 fail=0 D= S= K=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
stop_killer() {
  psql "$URL" -qtAc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fbx_killer'" >/dev/null 2>&1
}
cleanup() {
  stop_killer
  [ -n "$K" ] && wait "$K" 2>/dev/null
  [ -n "$S" ] && kill "$S" 2>/dev/null && wait "$S" 2>/dev/null
  [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  if [ "$fail" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT
command -v psql >/dev/null || { echo "FAIL: psql is needed (postgresql-client)" >&2; exit 1; }

"$B/fuseboxd" init --data "$T/d" --store "$URL" --principal 'gw/gateway/-/*' >/dev/null ||
  { echo "FAIL: fuseboxd init" >&2; exit 1; }
export FUSEBOX_KEY="$T/d/keys/admin.key" FUSEBOX_SERVER_KEY="$T/d/keys/server.pub" \
  FUSEBOX_GATEWAY_KEY="$T/d/keys/gw.key" FUSEBOX_CONSOLE="ipc://$T/c.sock"
unset FUSEBOX_ACTOR FUSEBOX_ORG
NODE=()
[ -n "${FBX_KILL_NODE:-}" ] && NODE=(--node "$FBX_KILL_NODE" --lease-ms 3000)
"$B/fuseboxd" --data "$T/d" --store "$URL" --console "ipc://$T/c.sock" \
  --gateway "ipc://$T/g.sock" "${NODE[@]}" 2>"$T/daemon.log" &
D=$!
"$B/fuseboxctl" status >/dev/null || { echo "FAIL: daemon not up" >&2; cat "$T/daemon.log" >&2; exit 1; }
SIM=("$B/fusebox-devsim" --devices 400 --orgs 4 --quiet
     --console-endpoint "ipc://$T/c.sock" --gateway-endpoint "ipc://$T/g.sock")
"${SIM[@]}" --enroll-only >/dev/null || bad "devsim --enroll-only"
"${SIM[@]}" --no-enroll --delivery-log "$T/dlog" --stats-interval-s 0 >/dev/null 2>&1 &
S=$!

# the killer: one session polling every few microseconds, ended by
# stop_killer (or after 10 minutes)
psql "$URL&application_name=fbx_killer" -qtAc "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN WHILE clock_timestamp() < t0 + interval '10 minutes' LOOP PERFORM pg_stat_clear_snapshot(); PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active' AND query = 'COMMIT'; END LOOP; END \$\$" >/dev/null 2>&1 &
K=$!

dev() { printf 'org-00%s-d%06d' "$1" $(($2 % 100)); }
W=()
for o in 1 2 3 4; do
  ( for i in $(seq "$N"); do
      "$B/fuseboxctl" -o "org-00$o" --timeout 20000 submit --type query \
        --device "$(dev "$o" "$i")" --idempotency-key "k$o-$i" >/dev/null 2>>"$T/err"
      echo "$o $i $?" >> "$T/rc.$o"
    done ) &
  W+=($!)
done
wait "${W[@]}"
stop_killer
wait "$K" 2>/dev/null; K=
cat "$T"/rc.* > "$T/rc"

[ "$(wc -l < "$T/rc")" -eq $((4 * N)) ] && ok || bad "answers: $(wc -l < "$T/rc") of $((4 * N))"
odd=$(awk '$3 != 0 && $3 != 75 && $3 != 69' "$T/rc" | wc -l)
[ "$odd" -eq 0 ] && ok || bad "$odd submits ended otherwise: $(awk '$3 != 0 && $3 != 75 && $3 != 69' "$T/rc" | head -3); $(tail -3 "$T/err")"
failed=$(awk '$3 != 0' "$T/rc" | wc -l)
doubt=$(grep -c "commit in doubt: COMMIT was sent" "$T/daemon.log")
echo "pg_commit_kill_test: $failed of $((4 * N)) submits answered an error; $doubt commits in doubt: $(grep "commit in doubt: transaction\|commit in doubt: whether\|commit in doubt: the server is not" "$T/daemon.log" | sed 's/.*commit in doubt: //' | sed 's/transaction [0-9]* //' | sort | uniq -c | tr '\n' ';')"

# every refused submit, again with its key, until it is recorded
while read -r o i st; do
  [ "$st" -eq 0 ] && continue
  done_=0
  for _ in $(seq 40); do
    if "$B/fuseboxctl" -o "org-00$o" submit --type query --device "$(dev "$o" "$i")" \
         --idempotency-key "k$o-$i" >/dev/null 2>&1; then done_=1; break; fi
    sleep 0.5
  done
  [ "$done_" -eq 1 ] && ok || bad "k$o-$i never recorded when sent again"
done < "$T/rc"

# N commands per organisation, each done with one success
for o in 1 2 3 4; do
  n=0
  for _ in $(seq 60); do
    n=$("$B/fuseboxctl" -o "org-00$o" list --limit 1000 2>/dev/null | grep -c ' done ')
    [ "$n" -eq "$N" ] && break
    sleep 0.5
  done
  [ "$n" -eq "$N" ] && ok || bad "org-00$o: $n commands done, want $N: $("$B/fuseboxctl" -o "org-00$o" list --limit 1000 2>&1 | tail -3)"
done
kill "$S"; wait "$S" 2>/dev/null; S=
python3 - "$T/dlog" "$((4 * N))" <<'PY' && ok || bad "delivery log: see above"
import sys
acked, dup, recv = set(), 0, 0
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) < 2:
        continue
    if p[0] == "A":
        acked.add(p[1])
    elif p[0] == "R":
        recv += 1
        dup += p[1] in acked
print("pg_commit_kill_test: received", recv, "acked", len(acked),
      "dup_after_durable_success", dup)
sys.exit(0 if dup == 0 and len(acked) == int(sys.argv[2]) else 1)
PY
kill "$D"; wait "$D"; st=$?; D=
[ $st -eq 0 ] && ok || bad "fuseboxd exited $st after SIGTERM"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/daemon.log"; then
  bad "sanitizer report in the daemon's log"
else ok; fi
echo "pg_commit_kill_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
