#!/usr/bin/env bash
# pg_hang_test.sh: fuseboxd on a PostgreSQL server that stops answering
# while its host still takes connections (every server process stopped
# with SIGSTOP: a hung postmaster, a paused machine). The daemon runs
# with --pg-wait-ms 2000 (storage/pg_wait.c):
#   - a submit while the server is stopped gets the engine's answer
#     (IO or STORAGE, "not recorded", or TIMEOUT, "outcome unknown"),
#     not the console's own "no reply" after its 60 s, and the log says
#     which statement got no answer; a status request is answered from
#     memory, and says the daemon is degraded;
#   - once the server runs again the daemon writes again by itself, and
#     the refused submit, sent again with its key, is recorded once;
#   - under four consoles of keyed submits and a gateway, the server
#     stopped three times for 4 s each: every submit ends recorded
#     once, every delivery succeeds once, none is received again after
#     its success was ACKed as durable;
#   - the server shut down (pg_ctl stop -m immediate) and started again:
#     the daemon stays up, says it is degraded, answers a read "the
#     store cannot be read", then records a submit.
# Without the bound the daemon waits for the stopped server for ever
# and the first check fails on the console's timeout. Run by CTest under
# tests/pg_cluster.sh (FBX_TEST_PG_URL). FBX_HANG_NODE=NAME runs the
# daemon as a cluster node (--node NAME --lease-ms 3000): its leases
# run out while the server is stopped and are taken again after.
set -u
B=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
URL=${FBX_TEST_PG_URL:?run under tests/pg_cluster.sh}
N=${FBX_HANG_SUBMITS:-40}
T=$(mktemp -d /tmp/fbx-pghang.XXXXXX)
chmod 755 "$T"
pass=0 fail=0 D= S=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# the cluster's processes: the postmaster (its pid file, in the data
# directory DIR/data) and its children
PGD=${FBX_TEST_PG_DIR:?run under tests/pg_cluster.sh}
pm=$(head -n 1 "$PGD/data/postmaster.pid" 2>/dev/null)
server() { # STOP | CONT
  [ -n "$pm" ] || return 1
  kill -"$1" "$pm" && kill -"$1" $(pgrep -P "$pm") 2>/dev/null
}
cleanup() {
  server CONT
  [ -n "$S" ] && kill "$S" 2>/dev/null && wait "$S" 2>/dev/null
  [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  if [ "$fail" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT
# alive WHEN - the daemon still runs; else the test ends here (what
# follows would only wait on a dead socket)
alive() {
  kill -0 "$D" 2>/dev/null && { ok; return; }
  wait "$D"
  bad "fuseboxd died $1 (exit $?): $(tail -3 "$T/daemon.log")"
  D=
  echo "pg_hang_test: $pass passed, $fail failed"
  exit 1
}
# shellcheck source=tests/keyed_submits.sh
. "$(dirname "$0")/keyed_submits.sh"
[ -n "$pm" ] && kill -0 "$pm" 2>/dev/null ||
  { echo "FAIL: no postmaster under $PGD/data" >&2; exit 1; }

"$B/fuseboxd" init --data "$T/d" --store "$URL" --principal 'gw/gateway/-/*' >/dev/null ||
  { echo "FAIL: fuseboxd init" >&2; exit 1; }
export FUSEBOX_KEY="$T/d/keys/admin.key" FUSEBOX_SERVER_KEY="$T/d/keys/server.pub" \
  FUSEBOX_GATEWAY_KEY="$T/d/keys/gw.key" FUSEBOX_CONSOLE="ipc://$T/c.sock"
unset FUSEBOX_ACTOR FUSEBOX_ORG
NODE=()
[ -n "${FBX_HANG_NODE:-}" ] && NODE=(--node "$FBX_HANG_NODE" --lease-ms 3000)
"$B/fuseboxd" --data "$T/d" --store "$URL" --console "ipc://$T/c.sock" \
  --gateway "ipc://$T/g.sock" --pg-wait-ms 2000 "${NODE[@]}" 2>"$T/daemon.log" &
D=$!
"$B/fuseboxctl" status >/dev/null || { echo "FAIL: daemon not up" >&2; cat "$T/daemon.log" >&2; exit 1; }
SIM=("$B/fusebox-devsim" --devices 400 --orgs 4 --quiet
     --console-endpoint "ipc://$T/c.sock" --gateway-endpoint "ipc://$T/g.sock")
"${SIM[@]}" --enroll-only >/dev/null || bad "devsim --enroll-only"
"${SIM[@]}" --no-enroll --delivery-log "$T/dlog" --stats-interval-s 0 >/dev/null 2>&1 &
S=$!

# 1. one submit, then the server stopped: the engine answers
ks_sub 1 0 >/dev/null && ok || bad "first submit"
# over TLS (PG_TLS=1, pg_cluster.sh): every session of the daemon is
# encrypted, so the waits below run in storage/pg_wait.c's slices
if [ "${PG_TLS:-0}" = 1 ]; then
  tls=$(psql "$URL" -XAtc "SELECT count(*) FILTER (WHERE s.ssl), count(*)
    FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
    WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()")
  case "$tls" in
  0\|*|"") bad "the daemon's sessions are not over TLS: '$tls'" ;;
  *) [ "${tls%|*}" = "${tls#*|}" ] && ok ||
       bad "not all of the daemon's sessions are over TLS (encrypted|all): $tls" ;;
  esac
fi
server STOP || bad "cannot stop the server's processes"
ks_sub 1 1 --timeout 60000 >/dev/null 2>"$T/stopped.err"
st=$?
if [ "$st" -eq 75 ] || [ "$st" -eq 69 ] && ! grep -q "no reply" "$T/stopped.err"; then
  ok
else
  bad "submit to a stopped server: exit $st: $(cat "$T/stopped.err")"
fi
grep -q "server not answering: no answer in [0-9]* ms to " "$T/daemon.log" && ok ||
  bad "the log does not name the statement without an answer: $(tail -5 "$T/daemon.log")"
"$B/fuseboxctl" --timeout 60000 status >"$T/status.out" 2>"$T/status.err"
st=$?
[ "$st" -eq 0 ] && grep -q "^degraded  *yes" "$T/status.out" && ok ||
  bad "status while the server is stopped: exit $st: $(cat "$T/status.out" "$T/status.err")"
alive "while the server was stopped"
server CONT
ks_until 1 1 && ok || bad "the refused submit is not recorded once the server runs: $(tail -5 "$T/daemon.log")"
n=$("$B/fuseboxctl" -o org-001 list --limit 100 2>/dev/null | grep -c ' query ')
[ "$n" -eq 2 ] && ok || bad "org-001 has $n commands, want 2"

# 2. the server stopped now and then under keyed submits
W=()
for o in 1 2 3 4; do
  ( for i in $(seq 2 $((N + 1))); do
      ks_sub "$o" "$i" --timeout 60000 >/dev/null 2>>"$T/err"
      echo "$o $i $?" >> "$T/rc.$o"
    done ) &
  W+=($!)
done
for _ in 1 2 3; do
  sleep 1
  server STOP || bad "cannot stop the server's processes"
  sleep 4
  server CONT
done
wait "${W[@]}"
alive "while the server was stopped now and then"
cat "$T"/rc.* > "$T/rc"
[ "$(wc -l < "$T/rc")" -eq $((4 * N)) ] && ok || bad "answers: $(wc -l < "$T/rc") of $((4 * N))"
odd=$(awk '$3 != 0 && $3 != 75 && $3 != 69' "$T/rc" | wc -l)
[ "$odd" -eq 0 ] && ok || bad "$odd submits ended otherwise: $(tail -3 "$T/err")"
grep -q "no reply" "$T/err" && bad "a console got no reply: $(grep "no reply" "$T/err" | head -2)" || ok
echo "pg_hang_test: $(awk '$3 != 0' "$T/rc" | wc -l) of $((4 * N)) submits refused while stopped; $(grep -c "server not answering: no answer in" "$T/daemon.log") statements without an answer, $(grep -c "not asked again before" "$T/daemon.log") transactions refused at once after one; $(grep -c "commit in doubt: COMMIT was sent" "$T/daemon.log") commits in doubt"
ks_resend "$T/rc"

# every command done with one success, none twice
for o in 1 2 3 4; do
  want=$N
  [ "$o" -eq 1 ] && want=$((N + 2))
  ks_done "$o" "$want"
done
kill "$S"; wait "$S" 2>/dev/null; S=
ks_dlog "$T/dlog" "$((4 * N + 2))" pg_hang_test

# 3. the server shut down for a few seconds, then started again: the
# daemon stays up and says it is degraded meanwhile (a cluster node
# crashed here: its lease tick began a transaction on the store it
# could not reopen), then records a submit again
pgctl=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/pg_ctl
as=()
[ "$(id -u)" -eq 0 ] && as=(runuser -u "$(stat -c %U "$PGD/data")" --)
"${as[@]}" "$pgctl" -D "$PGD/data" stop -m immediate >/dev/null 2>&1 ||
  bad "cannot stop the server"
sleep 3
alive "while the server was down"
"$B/fuseboxctl" --timeout 60000 status >"$T/status.out" 2>"$T/status.err"
st=$?
[ "$st" -eq 0 ] && grep -q "^degraded  *yes" "$T/status.out" && ok ||
  bad "status while the server is down: exit $st: $(cat "$T/status.out" "$T/status.err")"
"$B/fuseboxctl" -o org-001 --timeout 60000 list >/dev/null 2>"$T/list.err"
st=$?
[ "$st" -ne 0 ] && grep -q "the store cannot be read" "$T/list.err" && ok ||
  bad "a read while the server is down: exit $st: $(cat "$T/list.err")"
"${as[@]}" "$pgctl" -D "$PGD/data" -l "$PGD/postgres.log" -w -t 60 start >/dev/null 2>&1 ||
  bad "cannot start the server again"
pm=$(head -n 1 "$PGD/data/postmaster.pid" 2>/dev/null)
ks_until 2 0 && ok || bad "no submit recorded once the server is back: $(tail -5 "$T/daemon.log")"
alive "after the server came back"

kill "$D"; wait "$D"; st=$?; D=
[ $st -eq 0 ] && ok || bad "fuseboxd exited $st after SIGTERM"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/daemon.log"; then
  bad "sanitizer report in the daemon's log"
else ok; fi
echo "pg_hang_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
