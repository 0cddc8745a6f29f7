#!/usr/bin/env bash
# pg.sh: run the PostgreSQL job-queue baseline (bench_pgqueue) against a
# throw-away PostgreSQL cluster and a fusebox-devsim gateway, R times, and
# print the median. The cluster lives in a temp directory on disk (not
# tmpfs), listens on a unix socket only, and keeps PostgreSQL's durable
# defaults (fsync=on, synchronous_commit=on), the same durability as
# fusebox's default; everything is removed on every exit path. The
# gateway socket is CURVE, as the engine's (devsim connects only with
# CURVE): `fuseboxd init` makes a server key pair and a gateway key in the
# temp directory, bench_pgqueue serves with the first (--keys) and devsim
# connects with server.pub and the second (--server-key, --gateway-key).
#
# usage: bench/pg.sh [--devices N] [--runs R] [--orgs M] [--window W]
#                    [-- BENCH_PGQUEUE_ARGS...]
# (orgs 1 and window 65536 by default, as bench_fanout runs devsim)
# env:   BENCH_BIN    bench_pgqueue (default build/release/bench/...)
#        DEVSIM_BIN   fusebox-devsim (default build/release/dispatcher/...)
#        FUSEBOXD_BIN fuseboxd, for `fuseboxd init` (default: next to
#                     DEVSIM_BIN)
#        PG_BENCH_DIR parent of the temp directory (default $TMPDIR or /tmp)
#        PG_USER      system user that runs the server when invoked as
#                     root (default fbxbench, created if missing)
set -euo pipefail

devices=100000
runs=3
orgs=1
window=65536
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--devices) devices=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--orgs) orgs=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next }
		NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "pg.sh: unknown argument '$1'" >&2; exit 64 ;;
	esac
done
case "$devices$runs$orgs$window" in
*[!0-9]*) echo "pg.sh: --devices, --runs, --orgs and --window take numbers" >&2; exit 64 ;;
esac
[ "$runs" -ge 1 ] || { echo "pg.sh: --runs must be >= 1" >&2; exit 64; }

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "pg.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---- packages (Debian 12: PostgreSQL 15) ---------------------------------
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] ||
	! pkg-config --exists libpq 2>/dev/null; then
	log "installing postgresql and libpq-dev"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		postgresql libpq-dev >/dev/null
	pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# ---- binaries -------------------------------------------------------------
bench=${BENCH_BIN:-$root/build/release/bench/bench_pgqueue}
devsim=${DEVSIM_BIN:-$root/build/release/dispatcher/fusebox-devsim}
fuseboxd=${FUSEBOXD_BIN:-$(dirname "$devsim")/fuseboxd}
if [ ! -x "$bench" ] || [ ! -x "$devsim" ] || [ ! -x "$fuseboxd" ]; then
	if [ -n "${BENCH_BIN:-}${DEVSIM_BIN:-}${FUSEBOXD_BIN:-}" ]; then
		log "missing $bench, $devsim or $fuseboxd"
		exit 69
	fi
	log "building bench_pgqueue, fusebox-devsim and fuseboxd (release preset)"
	(cd "$root" && cmake --preset release >/dev/null &&
		cmake --build --preset release -j2 \
			--target bench_pgqueue fusebox-devsim fuseboxd >/dev/null)
fi

# ---- cluster ---------------------------------------------------------------
tmp=$(mktemp -d "${PG_BENCH_DIR:-${TMPDIR:-/tmp}}/fbx-pg.XXXXXX")
pgdata=$tmp/data
devsim_pid=
bench_pid=
started=0
runas=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid
	for pid in $bench_pid $devsim_pid; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$started" -eq 1 ]; then
		"${runas[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop \
			>/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then
	# initdb and postgres refuse to run as root.
	pguser=${PG_USER:-fbxbench}
	if ! id -u "$pguser" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin \
			"$pguser"
	fi
	chown "$pguser" "$tmp"
	chmod 755 "$tmp"
	runas=(runuser -u "$pguser" --)
fi
"${runas[@]}" "$pgbin/initdb" -D "$pgdata" -U bench -A trust -E UTF8 \
	--no-locale >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; exit 70; }
cat >>"$pgdata/postgresql.conf" <<EOF
# fusebox bench/pg.sh
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = 20
logging_collector = off
EOF
"${runas[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$tmp/postgres.log" -w \
	-t 60 start >/dev/null ||
	{ cat "$tmp/postgres.log" >&2; exit 70; }
started=1
conninfo="host=$tmp port=5432 user=bench dbname=postgres"
fs=$(stat -f -c %T "$tmp" 2>/dev/null || echo '?')
log "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') in $tmp ($fs), $devices devices, $runs runs"

# ---- keys ------------------------------------------------------------------
# As bench/bench.c keys_init: the server key pair and a gateway principal.
# bench_pgqueue runs no ZAP handler (as bench_floor), so the gateway key
# is not checked, but devsim needs one to connect with.
"$fuseboxd" init --data "$tmp/fbx" --principal 'gw/gateway/-/*' \
	>"$tmp/init.log" 2>&1 || { cat "$tmp/init.log" >&2; exit 70; }
keys=$tmp/fbx/keys
for f in server.key server.pub gw.key; do
	[ -f "$keys/$f" ] || { log "fuseboxd init made no $keys/$f"; exit 70; }
done

# ---- runs ------------------------------------------------------------------
results=()
for i in $(seq 1 "$runs"); do
	ep="ipc://$tmp/gw.sock"
	report=$tmp/devsim.$i.report
	"$devsim" --gateway-endpoint "$ep" --devices "$devices" \
		--orgs "$orgs" --window "$window" --no-enroll --quiet \
		--server-key "$keys/server.pub" --gateway-key "$keys/gw.key" \
		--report "$report" \
		>"$tmp/devsim.$i.out" 2>"$tmp/devsim.$i.err" &
	devsim_pid=$!
	# In the background and waited for, so a signal to this script is
	# handled at once (the trap stops both children).
	"$bench" --conninfo "$conninfo" --gateway-endpoint "$ep" \
		--keys "$keys" --devices "$devices" --orgs "$orgs" --quiet \
		"${extra[@]}" \
		>"$tmp/bench.$i.out" &
	bench_pid=$!
	brc=0
	wait "$bench_pid" || brc=$?
	bench_pid=
	line=$(tail -n 1 "$tmp/bench.$i.out")
	kill -TERM "$devsim_pid" 2>/dev/null || true
	wait "$devsim_pid" 2>/dev/null || true
	devsim_pid=
	if [ "$brc" -ne 0 ] || [ -z "$line" ]; then
		log "run $i failed (exit $brc)"
		tail -n 20 "$tmp/devsim.$i.err" >&2 || true
		exit 70
	fi
	# The gateway's own count: every device exactly once, none it does
	# not know, nothing re-sent after its success was ACKed as durable.
	totals=$(head -n 1 "$report" 2>/dev/null || true)
	distinct=$(sed -n 's/.*distinct_ids=\([0-9]*\).*/\1/p' <<<"$totals")
	dups=$(sed -n 's/.*dup_after_durable_success=\([0-9]*\).*/\1/p' \
		<<<"$totals")
	foreign=$(sed -n 's/.*foreign=\([0-9]*\).*/\1/p' <<<"$totals")
	if [ "$distinct" != "$devices" ] || [ "$dups" != "0" ] ||
		[ "$foreign" != "0" ]; then
		log "run $i: devsim saw distinct_ids=${distinct:-?}" \
			"dup_after_durable_success=${dups:-?}" \
			"foreign=${foreign:-?}: $totals"
		exit 70
	fi
	log "run $i: $line"
	results+=("$line")
done

# ---- median ----------------------------------------------------------------
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1}
	END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
dps=() walls=() inserts=()
for l in "${results[@]}"; do
	dps+=("$(field deliveries_per_s "$l")")
	walls+=("$(field wall_ms "$l")")
	inserts+=("$(field insert_ms "$l")")
done
med_dps=$(median "${dps[@]}")
med_wall=$(median "${walls[@]}")
med_ins=$(median "${inserts[@]}")
last=${results[${#results[@]}-1]}
str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2"; }
pgver=$(str postgres "$last")
echo "pgqueue: median of $runs runs, $devices devices: $med_dps deliveries/s, $med_wall ms (runs: ${dps[*]} deliveries/s)"
printf '{"bench":"pgqueue","devices":%s,"deliveries_per_s":%s,"wall_ms":%s,"insert_ms":%s,"runs":%s,"runs_deliveries_per_s":[%s],"orgs":%s,"window":%s,"workers":%s,"claim_batch":%s,"postgres":"%s","fsync":"%s","synchronous_commit":"%s","fs":"%s"}\n' \
	"$devices" "$med_dps" "$med_wall" "$med_ins" "$runs" \
	"$(IFS=,; echo "${dps[*]}")" "$orgs" "$window" "$(field workers "$last")" \
	"$(field claim_batch "$last")" "$pgver" "$(str fsync "$last")" \
	"$(str synchronous_commit "$last")" "$fs"
