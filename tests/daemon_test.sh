#!/usr/bin/env bash
# daemon_test.sh: fuseboxd as a service: SIGHUP reloads the config file
# (live settings applied, fixed ones logged, a bad file keeps the running
# configuration) and keeps serving; SIGTERM drains and exits 0 and removes
# the socket files; a second daemon on a live socket path is refused (69);
# the stale socket file of a killed daemon is removed, and a daemon
# whose store cannot be opened leaves none; a data path that is
# a file, or not writable, is named as such (73).
# Run by CTest (fbx.tests.daemon_test) with FBX_BIN_DIR set.
set -u
B=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
T=$(mktemp -d /tmp/fbx-daemon.XXXXXX)
chmod 755 "$T"
pass=0 fail=0 D=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
cleanup() {
  [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  if [ "$fail" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT
export FUSEBOX_CONSOLE="ipc://$T/c.sock" FUSEBOX_ORG=acme
unset FUSEBOX_ACTOR
# keys DATA: the server and client keys (`fuseboxd init`), for the CLI
# and the simulator through the environment
keys() {
  "$B/fuseboxd" init --data "$1" --principal gw/gateway/-/'*' >/dev/null ||
    { echo "FAIL: fuseboxd init --data $1" >&2; exit 1; }
  export FUSEBOX_KEY="$1/keys/admin.key" FUSEBOX_SERVER_KEY="$1/keys/server.pub" \
    FUSEBOX_GATEWAY_KEY="$1/keys/gw.key"
}
keys "$T/db"
EPS=(--console "ipc://$T/c.sock" --gateway "ipc://$T/g.sock")
wait_log() { # PATTERN: up to 5 s
  for _ in $(seq 50); do grep -q -- "$1" "$T/d.log" && return 0; sleep 0.1; done
  return 1
}

printf '[fuseboxd]\nretention = 3600\nheartbeat_ms = 1000\n' > "$T/f.ini"
"$B/fuseboxd" -c "$T/f.ini" --data "$T/db" "${EPS[@]}" 2>"$T/d.log" &
D=$!
"$B/fuseboxctl" status >/dev/null; check '[ $? -eq 0 ]' "daemon answers"

# a second daemon on the same socket path, another store: refused
"$B/fuseboxd" --data "$T/db2" "${EPS[@]}" 2>"$T/2.log"; st=$?
check '[ $st -eq 69 ] && grep -q "served by another process" "$T/2.log"' \
  "second daemon on a live socket: exit $st, $(cat "$T/2.log")"
"$B/fuseboxctl" status >/dev/null; check '[ $? -eq 0 ]' "first daemon still reachable"
# the same store: refused by the store lock
"$B/fuseboxd" --data "$T/db" --console "ipc://$T/c3.sock" \
  --gateway "ipc://$T/g3.sock" 2>"$T/3.log"; st=$?
check '[ $st -eq 75 ] && grep -q "in use by another fuseboxd" "$T/3.log"' \
  "second daemon on the same store: exit $st"

# an endpoint on every interface is warned about (README: bind a
# loopback or private address). The port does not parse, so the bind
# fails and nothing listens: the warning comes before the bind.
"$B/fuseboxd" init --data "$T/db4" >/dev/null || bad "init db4"
"$B/fuseboxd" --data "$T/db4" --console "ipc://$T/c4.sock" \
  --gateway "tcp://0.0.0.0:x" 2>"$T/4.log"; st=$?
check '[ $st -eq 69 ] && grep -q "warn  --gateway tcp://0.0.0.0:x binds every interface" "$T/4.log"' \
  "every-interface warning: exit $st, $(cat "$T/4.log")"
check '! grep -q "binds every interface" "$T/d.log"' "no warning for ipc endpoints"

# SIGHUP: reload
printf '[fuseboxd]\nretention = 7200\nheartbeat_ms = 500\nlog_level = debug\n' > "$T/f.ini"
kill -HUP "$D"
wait_log "SIGHUP: reloaded"
check 'grep -q "SIGHUP: reloaded .*retention, log_level" "$T/d.log"' "reload logged: $(tail -3 "$T/d.log")"
check 'grep -q "heartbeat_ms cannot change while running" "$T/d.log"' "fixed setting logged"
wait_log "debug"; check '[ $? -eq 0 ]' "log level debug applied"
printf '[fuseboxd]\nretention = oops\n' > "$T/f.ini"
kill -HUP "$D"
wait_log "running configuration is kept"
check 'grep -q "f.ini:2: retention = oops: bad value.*running configuration is kept" "$T/d.log"' \
  "bad file on reload: $(tail -2 "$T/d.log")"
"$B/fuseboxctl" status >/dev/null; check '[ $? -eq 0 ]' "alive after SIGHUP"

# SIGTERM: drain, exit 0, sockets removed
kill "$D"; wait "$D"; st=$?; D=
check '[ $st -eq 0 ]' "exit $st after SIGTERM"
check '[ ! -e "$T/c.sock" ] && [ ! -e "$T/g.sock" ]' "socket files removed at exit"
check 'grep -q "draining" "$T/d.log"' "drain logged"

# a killed daemon leaves its sockets: the next start removes them
"$B/fuseboxd" --data "$T/db" "${EPS[@]}" 2>"$T/d.log" &
D=$!
"$B/fuseboxctl" status >/dev/null
kill -9 "$D"; wait "$D" 2>/dev/null; D=
check '[ -S "$T/c.sock" ]' "kill -9 leaves the socket file"
"$B/fuseboxd" --data "$T/db" "${EPS[@]}" 2>"$T/d.log" &
D=$!
"$B/fuseboxctl" status >/dev/null; check '[ $? -eq 0 ]' "restart over a stale socket"
check 'grep -q "removed stale socket $T/c.sock" "$T/d.log"' "stale socket logged"
kill -INT "$D"; wait "$D"; st=$?; D=
check '[ $st -eq 0 ]' "exit $st after SIGINT"

# events on tcp: a revoke replaces the events socket (security.md,
# Events); the port is taken again once the old listener has closed,
# from the loop, without an error line
P=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$B/fuseboxd" --data "$T/db" "${EPS[@]}" --events "tcp://127.0.0.1:$P" 2>"$T/d.log" &
D=$!
"$B/fuseboxctl" principal add ev1 --kind operator --roles viewer --orgs acme \
  --key-out "$T/ev1.key" >/dev/null
check '[ $? -eq 0 ]' "principal ev1 added"
"$B/fuseboxctl" principal revoke ev1 >/dev/null; check '[ $? -eq 0 ]' "ev1 revoked"
wait_log "events: every subscription ended"
check '[ $? -eq 0 ]' "events socket replaced at the revoke: $(tail -3 "$T/d.log")"
if grep -q "every subscription ended.*once the endpoint is bound again" "$T/d.log"; then
  wait_log "events: tcp://127.0.0.1:$P bound again"
  check '[ $? -eq 0 ]' "events endpoint bound again: $(tail -3 "$T/d.log")"
fi
check '(exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null' "events port $P listens after the revoke"
check '! grep -q "cannot bind events" "$T/d.log"' \
  "no error line for the rebind: $(grep "bind events" "$T/d.log")"
kill "$D"; wait "$D"; st=$?; D=
check '[ $st -eq 0 ]' "exit $st after SIGTERM (events on tcp)"

# a store that cannot be opened (here: data.mdb is not an LMDB file) is
# found after the sockets are bound: exit 66, and their files are gone
"$B/fuseboxd" init --data "$T/bad" >/dev/null 2>&1
head -c 65536 /dev/urandom > "$T/bad/data.mdb"
out=$("$B/fuseboxd" --data "$T/bad" --console "ipc://$T/bc.sock" \
  --gateway "ipc://$T/bg.sock" --events "ipc://$T/be.sock" 2>&1); st=$?
check '[ $st -eq 66 ] && grep -q "cannot open store" <<<"$out"' "unreadable store: $st $out"
check '[ ! -e "$T/bc.sock" ] && [ ! -e "$T/bg.sock" ] && [ ! -e "$T/be.sock" ]' \
  "no socket files left by a daemon that did not start: $(ls "$T")"

# data paths
touch "$T/plain"
out=$("$B/fuseboxd" --data "$T/plain" "${EPS[@]}" 2>&1); st=$?
# 73, or 77 from the data directory's permission check (auth.c) first
check '[ $st -eq 73 -o $st -eq 77 ] && grep -q "is not a directory" <<<"$out"' "plain file as data: $st $out"
out=$("$B/fuseboxd" --data "$T/plain/sub" "${EPS[@]}" 2>&1); st=$?
check '[ $st -eq 73 ] && grep -q "cannot create data directory" <<<"$out"' "data under a file: $st $out"
mkdir -p "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
  out=$("$B/fuseboxd" --data "$T/ro" "${EPS[@]}" 2>&1); st=$?
  check '[ $st -eq 73 ] && grep -q "is not writable" <<<"$out"' "read-only data: $st $out"
elif command -v setpriv >/dev/null; then
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$B/fuseboxd" --data "$T/ro" --console "ipc://$T/n.sock" \
    --gateway "ipc://$T/ng.sock" 2>&1); st=$?
  check '[ $st -eq 73 ] && grep -q "is not writable" <<<"$out"' "read-only data (as nobody): $st $out"
else
  echo "skip: read-only data directory (root, no setpriv)"
fi

echo "daemon_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
