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
# shellcheck source=tests/keyed_submits.sh
. "$(dirname "$0")/keyed_submits.sh"
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

W=()
for o in 1 2 3 4; do
  ( for i in $(seq "$N"); do
      ks_sub "$o" "$i" --timeout 20000 >/dev/null 2>>"$T/err"
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
ks_resend "$T/rc"
# N commands per organisation, each done with one success
for o in 1 2 3 4; do ks_done "$o" "$N"; done
kill "$S"; wait "$S" 2>/dev/null; S=
ks_dlog "$T/dlog" "$((4 * N))" pg_commit_kill_test
kill "$D"; wait "$D"; st=$?; D=
[ $st -eq 0 ] && ok || bad "fuseboxd exited $st after SIGTERM"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/daemon.log"; then
  bad "sanitizer report in the daemon's log"
else ok; fi
echo "pg_commit_kill_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
