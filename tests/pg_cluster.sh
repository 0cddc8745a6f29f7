#!/usr/bin/env bash
# pg_cluster.sh: a throw-away PostgreSQL cluster for the store's tests
# (the same recipe as bench/pg.sh): a temp directory on disk, a unix
# socket in it and no TCP listener, fsync and synchronous_commit on.
# With PG_TLS=1 it also listens on 127.0.0.1 (a free port) with TLS on
# (a certificate for IP 127.0.0.1 made for it by openssl) and the URL
# it prints connects there with sslmode=verify-full against that
# certificate: the store's statements then run over TLS.
#
# usage: tests/pg_cluster.sh start [DIR]   prints the cluster's URL on
#                                         stdout (its directory is in it);
#                                         DIR is named fbx-pgt.* (stop
#                                         removes no other), default a
#                                         new one under PG_TMP
#        tests/pg_cluster.sh stop DIR     stops it and removes DIR
#        tests/pg_cluster.sh run CMD...   start, run CMD with
#                                         FBX_TEST_PG_URL set, stop (on
#                                         every exit path); CMD's status
# env:   PG_USER  system user that runs the server when invoked as root
#                 (default fbxtest, created if missing)
#        PG_TMP   parent of the temp directory (default $TMPDIR or /tmp)
#        PG_KEEP  1: `run` leaves the cluster running when CMD failed
#                 (to read a failed test's store; `stop DIR` removes it)
#        PG_TLS   1: TCP on 127.0.0.1 with TLS, as above
# `run` sets FBX_TEST_PG_URL and FBX_TEST_PG_DIR (the directory: `stop`'s
# argument; the server's data directory is DIR/data).
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
	case "$(basename "$tmp")" in
	fbx-pgt.*) ;;
	*)
		# stop removes the directory, so only one so named
		log "start: name the directory fbx-pgt.* ('$tmp' could not be stopped)"
		exit 64
		;;
	esac
	mkdir -p "$tmp" # a directory named by the caller may not exist yet
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
	local port=5432 try=0 opts=(-o "-c synchronous_commit=on")
	if [ "${PG_TLS:-0}" = 1 ]; then
		tls_cert "$tmp"
		cat >>"$tmp/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
	fi
	while :; do
		if [ "${PG_TLS:-0}" = 1 ]; then
			# a port nothing listens on now; another program may
			# take it first: then start fails and the next is tried
			port=$(shuf -i 20000-59999 -n 1)
			ss -ltnH "( sport = :$port )" 2>/dev/null | grep -q . &&
				continue
			# in the file, not on the command line: a test that
			# stops and starts the server keeps them (the last
			# line of a setting wins)
			printf "listen_addresses = '127.0.0.1'\nport = %s\n" \
				"$port" >>"$tmp/data/postgresql.conf"
		fi
		if "${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" \
			-l "$tmp/postgres.log" -w -t 60 "${opts[@]}" start \
			>/dev/null; then
			break
		fi
		try=$((try + 1))
		if [ "${PG_TLS:-0}" != 1 ] || [ "$try" -ge 5 ]; then
			cat "$tmp/postgres.log" >&2
			rm -rf "$tmp"
			exit 70
		fi
	done
	if [ "${PG_TLS:-0}" = 1 ]; then
		echo "postgresql://127.0.0.1:$port/postgres?user=fbx&sslmode=verify-full&sslrootcert=$tmp/root.crt"
	else
		echo "postgresql:///postgres?host=$tmp&port=5432&user=fbx"
	fi
}

# tls_cert DIR - a self-signed certificate for IP 127.0.0.1 and its key
# in DIR/data (the server's; the key readable by the server alone) and
# the certificate again as DIR/root.crt (the clients' trust root)
tls_cert() {
	local d=$1
	if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$d/data/server.key" -out "$d/data/server.crt" \
		>"$d/openssl.log" 2>&1; then
		cat "$d/openssl.log" >&2
		rm -rf "$d"
		exit 70
	fi
	cp "$d/data/server.crt" "$d/root.crt"
	chmod 644 "$d/root.crt"
	chmod 600 "$d/data/server.key"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$(stat -c %U "$d")" "$d/data/server.key" \
			"$d/data/server.crt"
	fi
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
	dir=$(mktemp -d "${PG_TMP:-${TMPDIR:-/tmp}}/fbx-pgt.XXXXXX")
	url=$(start "$dir") || {
		st=$?
		rm -rf "$dir" # start left nothing in it worth keeping
		exit "$st"
	}
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
