#!/usr/bin/env bash
# pg_cluster.sh: a throw-away PostgreSQL cluster for the store's tests
# (the same recipe as bench/pg.sh): a temp directory on disk, a unix
# socket in it and no TCP listener, fsync and synchronous_commit on.
#
# usage: tests/pg_cluster.sh start [DIR]   prints the cluster's URL on
#                                         stdout (its directory is in it)
#        tests/pg_cluster.sh stop DIR     stops it and removes DIR
#        tests/pg_cluster.sh run CMD...   start, run CMD with
#                                         FBX_TEST_PG_URL set, stop (on
#                                         every exit path); CMD's status
# env:   PG_USER  system user that runs the server when invoked as root
#                 (default fbxtest, created if missing)
#        PG_TMP   parent of the temp directory (default $TMPDIR or /tmp)
#        PG_KEEP  1: `run` leaves the cluster running when CMD failed
#                 (to read a failed test's store; `stop DIR` removes it)
# Missing PostgreSQL binaries are an error (exit 69), never a skip.
set -euo pipefail

log() { echo "pg_cluster.sh: $*" >&2; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

runas=()
setup_user() {
	if [ "$(id -u)" -eq 0 ]; then
		# initdb and postgres refuse to run as root
		local u=${PG_USER:-fbxtest}
		if ! id -u "$u" >/dev/null 2>&1; then
			useradd --system --no-create-home \
				--shell /usr/sbin/nologin "$u"
		fi
		chown "$u" "$1"
		chmod 755 "$1"
		runas=(runuser -u "$u" --)
	fi
}

# sweep - stop the clusters of runs that died without their EXIT trap
# (SIGKILL, a test timeout): each `run` leaves its pid in DIR/runner.
sweep() {
	local d pid
	for d in "${PG_TMP:-${TMPDIR:-/tmp}}"/fbx-pgt.*; do
		[ -f "$d/runner" ] || continue
		pid=$(cat "$d/runner" 2>/dev/null || echo)
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			log "stopping the cluster of a dead run in $d"
			stop "$d"
		fi
	done
}

start() {
	if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] || [ ! -x "$pgbin/pg_ctl" ]; then
		log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install postgresql-15 (scripts/deps.sh)"
		exit 69
	fi
	local tmp=${1:-}
	if [ -z "$tmp" ]; then
		tmp=$(mktemp -d "${PG_TMP:-${TMPDIR:-/tmp}}/fbx-pgt.XXXXXX")
	fi
	setup_user "$tmp"
	if ! "${runas[@]}" "$pgbin/initdb" -D "$tmp/data" -U fbx -A trust \
		-E UTF8 --no-locale >"$tmp/initdb.log" 2>&1; then
		cat "$tmp/initdb.log" >&2
		rm -rf "$tmp"
		exit 70
	fi
	cat >>"$tmp/data/postgresql.conf" <<EOF
# fusebox tests/pg_cluster.sh
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = 300
logging_collector = off
EOF
	if ! "${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" \
		-w -t 60 -o "-c synchronous_commit=on" start >/dev/null; then
		cat "$tmp/postgres.log" >&2
		rm -rf "$tmp"
		exit 70
	fi
	echo "postgresql:///postgres?host=$tmp&port=5432&user=fbx"
}

stop() {
	local tmp=$1
	[ -n "$tmp" ] && [ -d "$tmp" ] || { log "no cluster at '$tmp'"; return 0; }
	# it removes the directory: only one that start made (its name and
	# its data directory), never a parent passed by mistake
	case "$(basename "$tmp")" in
	fbx-pgt.*) ;;
	*)
		log "refusing to stop '$tmp': not a directory made by start (fbx-pgt.*)"
		return 64
		;;
	esac
	if [ -e "$tmp/data" ] && [ ! -f "$tmp/data/PG_VERSION" ]; then
		log "refusing to stop '$tmp': its data is not a PostgreSQL cluster"
		return 64
	fi
	if [ -f "$tmp/data/postmaster.pid" ]; then
		setup_user "$tmp"
		"${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -m immediate -w \
			stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:?stop DIR}" ;;
run)
	shift
	[ $# -gt 0 ] || { log "run: no command"; exit 64; }
	sweep
	url=$(start)
	dir=${url#*host=}
	dir=${dir%%&*}
	echo $$ >"$dir/runner"
	rc=
	finish() {
		if [ "${PG_KEEP:-0}" = 1 ] && [ -n "$rc" ] && [ "$rc" != 0 ]; then
			rm -f "$dir/runner" # not swept by later runs
			log "cluster kept: $url (stop: $0 stop $dir)"
		else
			stop "$dir"
		fi
	}
	trap 'finish' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	st=0
	FBX_TEST_PG_URL=$url FBX_TEST_PG_DIR=$dir "$@" || st=$?
	rc=$st
	exit "$rc"
	;;
*)
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
	exit 64
	;;
esac
