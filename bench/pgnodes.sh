#!/usr/bin/env bash
# shellcheck disable=SC2046 # the table helpers split "n min med max" on purpose
# pgnodes.sh: fan-out and intake of fuseboxd on a shared PostgreSQL store
# with 1, 2 and 3 nodes (cluster mode, issue 13), next to one plain
# fuseboxd on LMDB with the same fleet, commands and clients.
#
# usage: bench/pgnodes.sh [--pairs P] [--devices N] [--orgs M]
#                         [--nodes "1 2 3"] [--lease-ms MS]
#                         [--intake "8x1 32x8"] [--intake-s S] [--1m]
#                         [--no-intake] [--build-dir D] [--no-build]
#                         [--out DIR] [--one SIDE]
#
# Sides: lmdb (one fuseboxd, LMDB in its data directory) and pgK (K
# fuseboxd nodes, --store on one throw-away PostgreSQL cluster made by
# tests/pg_cluster.sh, --node nI --lease-ms MS). Every run of a side is
# fresh: its own store (and cluster), daemons and gateways. Per run:
#   1. `fuseboxd init` (keys; every node gets a copy), the daemons start
#   2. the fleet (N devices over M organisations, fusebox-devsim
#      --enroll-only) is enrolled through node 1; then it waits until
#      the leases have spread (fbx_lease: every organisation leased by
#      a live node, none above ceil((M + 1) / K) (the lease '' of the
#      cluster-wide duties counts), unchanged over one lease period;
#      at most 180 s, else the run goes on and says so)
#   3. one fusebox-devsim gateway per node (same --devices/--orgs/--seed)
#   4. fan-out: bench_pgnodes fanout: one query to each whole
#      organisation, submitted to its owner (read from fbx_lease), wall
#      time from the first submit until every command is DONE
#   5. intake: for each mode KxM, bench_pgnodes intake: K clients on
#      organisations i mod M at their owners, M submits outstanding each,
#      S s (single-device queries; the gateways answer them); then until
#      the nodes are idle again
# The runs alternate side by side, round by round (lmdb, pg1, pg2, pg3,
# lmdb, ...; P rounds), as bench/run.sh does; ratios are per round
# (pgK run i / lmdb run i), min / median / max, with the medians of both.
# The 1-minute load average (uptime) is read before every run.
#
# Defaults: P 3, N 100000, M 30, nodes "1 2 3", lease 10000 ms (the
# daemon's default), intake "8x1 32x8", 5 s: about 4 minutes a round on
# 2 cores. --1m: N = 1,000,000 (about 4 minutes per PostgreSQL run,
# most of it enrolling; about 11 minutes a round without intake).
# --no-intake: fan-out only. --one SIDE: one run of one side, its JSON
# line last (bench/run.sh runs it so). --out DIR: keep logs there
# (default a temp directory, removed unless $FBX_PGNODES_KEEP=1).
# Binaries: DIR/dispatcher/{fuseboxd,fusebox-devsim,fuseboxctl} and
# DIR/bench/bench_pgnodes of --build-dir (default build/release; built
# unless --no-build). $FBX_BIN_DIR overrides the dispatcher directory.
# Network: ipc:// endpoints only; PostgreSQL on a unix socket only.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAIRS=3
DEVICES=${FBX_PGNODES_DEVICES:-100000}
ORGS=${FBX_PGNODES_ORGS:-30}
NODES="1 2 3"
LEASE_MS=10000
MODES="8x1 32x8"
INTAKE_S=5
BUILD=1
BUILD_DIR=${FBX_BENCH_BUILD_DIR:-$ROOT/build/release}
OUTDIR=
ONE=
need() { if [ $# -lt 2 ] || [ -z "$2" ]; then echo "pgnodes.sh: $1 needs a value" >&2; exit 64; fi; }
while [ $# -gt 0 ]; do
	case "$1" in
	--pairs) need "$@"; PAIRS=$2; shift ;;
	--devices) need "$@"; DEVICES=$2; shift ;;
	--orgs) need "$@"; ORGS=$2; shift ;;
	--nodes) need "$@"; NODES=$2; shift ;;
	--lease-ms) need "$@"; LEASE_MS=$2; shift ;;
	--intake) need "$@"; MODES=$2; shift ;;
	--intake-s) need "$@"; INTAKE_S=$2; shift ;;
	--no-intake) MODES= ;;
	--1m) DEVICES=1000000 ;;
	--build-dir) need "$@"; BUILD_DIR=$2; shift ;;
	--no-build) BUILD=0 ;;
	--out) need "$@"; OUTDIR=$2; shift ;;
	--one) need "$@"; ONE=$2; shift ;;
	-h|--help) awk 'NR > 1 && /^# shellcheck/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "pgnodes.sh: unknown argument '$1' (--help)" >&2; exit 64 ;;
	esac
	shift
done
case "$PAIRS$DEVICES$ORGS$LEASE_MS$INTAKE_S" in
*[!0-9]*) echo "pgnodes.sh: --pairs, --devices, --orgs, --lease-ms, --intake-s take numbers" >&2; exit 64 ;;
esac
for k in $NODES; do case "$k" in [1-9]) ;; *) echo "pgnodes.sh: --nodes: 1..9" >&2; exit 64 ;; esac; done
for m in $MODES; do case "$m" in [0-9]*x[0-9]*) ;; *) echo "pgnodes.sh: --intake: KxM" >&2; exit 64 ;; esac; done
[ "$PAIRS" -ge 1 ] && [ "$ORGS" -ge 1 ] && [ "$DEVICES" -ge "$ORGS" ] ||
	{ echo "pgnodes.sh: bad sizes" >&2; exit 64; }
log() { echo "pgnodes.sh: $*" >&2; }

BUILD_DIR=$(cd "$BUILD_DIR" 2>/dev/null && pwd || echo "$BUILD_DIR")
if [ "$BUILD" = 1 ] && [ -z "$ONE" ]; then
	cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
		-DFBX_BENCH=ON -DFBX_SANITIZER=none >/dev/null &&
		cmake --build "$BUILD_DIR" -j "$(nproc)" --target bench_pgnodes \
			fuseboxd fusebox-devsim fuseboxctl >/dev/null ||
		{ log "build failed"; exit 1; }
fi
BIN=${FBX_BIN_DIR:-$BUILD_DIR/dispatcher}
PGN=$BUILD_DIR/bench/bench_pgnodes
for f in "$BIN/fuseboxd" "$BIN/fusebox-devsim" "$BIN/fuseboxctl" "$PGN"; do
	[ -x "$f" ] || { log "missing $f (build with -DFBX_BENCH=ON)"; exit 69; }
done

# ------------------------------------------------------------ one run
# Everything a run starts is listed here and stopped on every exit path;
# only these pids and the cluster directory this run made are touched.
PIDS=()
SIMS=()
PGDIR=
WORK=
cleanup_run() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PIDS=()
	if [ -n "$PGDIR" ]; then
		bash "$ROOT/tests/pg_cluster.sh" stop "$PGDIR" >/dev/null 2>&1
		PGDIR=
	fi
}

# ctl EP ARGS...: fuseboxctl at one console, quick
ctl() { local ep=$1; shift; "$BIN/fuseboxctl" -e "$ep" --timeout 3000 --retries 0 "$@"; }
# stat_field EP NAME: a number of `fuseboxctl status`
stat_field() { ctl "$1" status 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }
# wait_gateways EP N: the node counts N gateways (60 s)
wait_gateways() {
	local i g
	for i in $(seq 1 600); do
		g=$(stat_field "$1" gateways)
		[ -n "$g" ] && [ "$g" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
wait_console() {
	local i
	for i in $(seq 1 300); do
		ctl "$1" status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
psqlq() { psql "$URL" -Atq -F ' ' -c "$1"; }
# lease_counts: "n1:16 n2:14" (organisation leases, '' left out)
lease_counts() {
	psqlq "select node || ':' || count(*) from fbx_lease where org <> '' and node <> '' and expires > now() group by node order by node" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}
# spread_ok K: every organisation leased live, none above the share
spread_ok() {
	local k=$1 share total max
	share=$(( (ORGS + 1 + k - 1) / k ))
	read -r total max < <(psqlq "select coalesce(sum(c), 0), coalesce(max(c), 0) from (select count(*) c from fbx_lease where org <> '' and node <> '' and expires > now() group by node) s" 2>/dev/null)
	[ "${total:-0}" = "$ORGS" ] && [ "${max:-99999}" -le "$share" ]
}

# measure NAME CMD...: run a bench_pgnodes step in the background (a
# signal is handled at once) while the gateways are watched: a gateway
# that exits fails the step at once instead of at the step's timeout.
# @return the step's status, 75 when a gateway died
measure() {
	local name=$1 pid p st dead=
	shift
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	pid=$!
	PIDS+=("$pid")
	while kill -0 "$pid" 2>/dev/null; do
		for p in "${SIMS[@]}"; do
			if ! kill -0 "$p" 2>/dev/null; then
				dead=$p
				break 2
			fi
		done
		sleep 0.5
	done
	if [ -n "$dead" ]; then
		wait "$dead"
		st=$?
		log "$name: a gateway (fusebox-devsim, pid $dead) exited (status $st) during the step: stopping it"
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 75
	fi
	wait "$pid"
}

# run_side SIDE ROUND: one run; prints human lines on stderr and one
# JSON line on stdout. @return 0, or 1 when anything failed
run_side() {
	local side=$1 round=$2 k i ep t0 t1 enroll_ms spread_ms=0 spread=true
	local per_org routes pids json fan st=0 dist keys dups foreign l
	SIMS=()
	if [ -n "$OUTDIR" ]; then
		mkdir -p "$OUTDIR" && WORK=$(mktemp -d "$OUTDIR/$side.$round.XXXX")
	else
		WORK=$(mktemp -d "${TMPDIR:-/tmp}/fbx-pgnodes.XXXXXX")
	fi
	l=$(cut -d' ' -f1 /proc/loadavg)
	case "$side" in
	lmdb) k=1 ;;
	pg[1-9]) k=${side#pg} ;;
	*) log "unknown side $side"; return 1 ;;
	esac
	URL=
	if [ "$side" != lmdb ]; then
		URL=$(bash "$ROOT/tests/pg_cluster.sh" start 2>"$WORK/pg.err") || {
			log "$side: PostgreSQL cluster did not start: $(tail -n 3 "$WORK/pg.err")"; return 1; }
		PGDIR=${URL#*host=}; PGDIR=${PGDIR%%&*}
	fi
	if ! "$BIN/fuseboxd" init --data "$WORK/n1" ${URL:+--store "$URL"} \
		--principal 'gw/gateway/-/*' >"$WORK/init.log" 2>&1; then
		log "$side: fuseboxd init failed: $(tail -n 3 "$WORK/init.log")"; cleanup_run; return 1
	fi
	keys=$WORK/n1/keys
	export FUSEBOX_KEY=$keys/admin.key FUSEBOX_SERVER_KEY=$keys/server.pub \
		FUSEBOX_GATEWAY_KEY=$keys/gw.key
	unset FUSEBOX_ACTOR FUSEBOX_CONSOLE FUSEBOX_ORG
	pids=
	for i in $(seq 1 "$k"); do
		[ "$i" = 1 ] || { mkdir -p "$WORK/n$i" && cp -a "$keys" "$WORK/n$i/"; }
		if [ "$side" = lmdb ]; then
			"$BIN/fuseboxd" --data "$WORK/n$i" --console "ipc://$WORK/c$i.sock" \
				--gateway "ipc://$WORK/g$i.sock" >"$WORK/n$i.log" 2>&1 &
		else
			"$BIN/fuseboxd" --data "$WORK/n$i" --store "$URL" --node "n$i" \
				--lease-ms "$LEASE_MS" --console "ipc://$WORK/c$i.sock" \
				--gateway "ipc://$WORK/g$i.sock" >"$WORK/n$i.log" 2>&1 &
		fi
		PIDS+=($!)
		pids=$pids${pids:+,}$!
	done
	for i in $(seq 1 "$k"); do
		wait_console "ipc://$WORK/c$i.sock" || {
			log "$side: node $i does not answer: $(tail -n 5 "$WORK/n$i.log")"; cleanup_run; return 1; }
	done
	local sim=("$BIN/fusebox-devsim" --devices "$DEVICES" --orgs "$ORGS" --seed 1 --quiet)
	t0=$(date +%s%3N)
	"${sim[@]}" --enroll-only --console-endpoint "ipc://$WORK/c1.sock" \
		--gateway-endpoint "ipc://$WORK/g1.sock" >"$WORK/enroll.log" 2>&1 || {
		log "$side: enrolment failed: $(tail -n 5 "$WORK/enroll.log")"; cleanup_run; return 1; }
	t1=$(date +%s%3N)
	enroll_ms=$((t1 - t0))
	dist=all
	if [ "$side" != lmdb ]; then
		# spread: the condition holds twice, one lease period apart
		local ok=0 deadline=$(( $(date +%s) + 180 ))
		while :; do
			if spread_ok "$k"; then
				ok=$((ok + 1))
				[ "$ok" -ge 2 ] && break
				sleep "$(awk -v m="$LEASE_MS" 'BEGIN { printf "%.1f", m / 1000 }')"
				continue
			fi
			ok=0
			if [ "$(date +%s)" -ge "$deadline" ]; then
				spread=false
				log "$side: leases not spread after 180 s: $(lease_counts)"
				break
			fi
			sleep 0.5
		done
		spread_ms=$(( $(date +%s%3N) - t1 ))
		dist=$(lease_counts)
	fi
	log "$side round $round: $DEVICES devices over $ORGS organisations enrolled in $enroll_ms ms; leases: $dist (spread after $spread_ms ms)"
	for i in $(seq 1 "$k"); do
		"${sim[@]}" --no-enroll --stats-interval-s 0 \
			--console-endpoint "ipc://$WORK/c$i.sock" \
			--gateway-endpoint "ipc://$WORK/g$i.sock" \
			--gateway-id "gw-n$i" --report "$WORK/sim$i.report" \
			>"$WORK/sim$i.log" 2>&1 &
		PIDS+=($!)
		SIMS+=($!)
	done
	for i in $(seq 1 "$k"); do
		wait_gateways "ipc://$WORK/c$i.sock" 1 || {
			log "$side: the gateway of node $i did not connect: $(tail -n 5 "$WORK/sim$i.log")"; cleanup_run; return 1; }
	done
	routes=$WORK/routes
	write_routes() {
		if [ "$side" = lmdb ]; then
			for i in $(seq 1 "$ORGS"); do printf 'org-%03d ipc://%s/c1.sock\n' "$i" "$WORK"; done
		else
			psqlq "select l.org, n.endpoint from fbx_lease l join fbx_node n on n.name = l.node where l.org <> '' order by l.org"
		fi > "$routes"
	}
	write_routes
	measure fanout "$PGN" fanout --routes "$routes" --pids "$pids"
	fan=$(grep '^{' "$WORK/fanout.out" | tail -n 1)
	grep -v '^{' "$WORK/fanout.out" | sed 's/^/    /' >&2
	if [ -z "$fan" ]; then
		log "$side: fan-out failed: $(tail -n 5 "$WORK/fanout.err")"; st=1
	fi
	json="{\"bench\":\"pgnodes\",\"side\":\"$side\",\"nodes\":$k,\"store\":\"$([ "$side" = lmdb ] && echo lmdb || echo postgresql)\",\"devices\":$DEVICES,\"orgs\":$ORGS,\"lease_ms\":$([ "$side" = lmdb ] && echo 0 || echo "$LEASE_MS"),\"enroll_ms\":$enroll_ms,\"spread_ms\":$spread_ms,\"spread\":$spread,\"leases\":\"$dist\",\"load1_start\":$l"
	[ -n "$fan" ] && json="$json,$(sed -e 's/^{//' -e 's/}$//' -e 's/"bench":"[^"]*",//' -e 's/"\([a-z_0-9]*\)":/"fanout_\1":/g' <<<"$fan")"
	per_org=$((DEVICES / ORGS))
	for m in $MODES; do
		[ "$st" = 0 ] || break
		write_routes
		local r
		measure "intake-$m" "$PGN" intake --routes "$routes" --pids "$pids" \
			--clients "${m%x*}" --inflight "${m#*x}" --seconds "$INTAKE_S" \
			--per-org "$per_org" --run "$round"
		r=$(grep '^{' "$WORK/intake-$m.out" | tail -n 1)
		grep -v '^{' "$WORK/intake-$m.out" | sed 's/^/    /' >&2
		if [ -z "$r" ]; then
			log "$side: intake $m failed: $(tail -n 5 "$WORK/intake-$m.err")"; st=1; break
		fi
		json="$json,$(sed -e 's/^{//' -e 's/}$//' -e 's/"bench":"[^"]*",//' -e "s/\"\([a-z_0-9]*\)\":/\"intake_${m}_\1\":/g" <<<"$r")"
	done
	# the gateways' reports: nothing received twice after its success
	# was durable, nothing of another node's organisations
	for p in "${SIMS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${SIMS[@]}"; do wait "$p" 2>/dev/null; done
	dups=0 foreign=0
	for i in $(seq 1 "$k"); do
		local t
		t=$(head -n 1 "$WORK/sim$i.report" 2>/dev/null)
		dups=$((dups + $(sed -n 's/.*dup_after_durable_success=\([0-9]*\).*/\1/p' <<<"$t" | grep . || echo 0)))
		foreign=$((foreign + $(sed -n 's/.* foreign=\([0-9]*\).*/\1/p' <<<"$t" | grep . || echo 0)))
	done
	json="$json,\"dup_after_durable_success\":$dups,\"foreign\":$foreign"
	# what the nodes logged that a benchmark should not cause
	local lost=0 fenced=0 slow=0
	for i in $(seq 1 "$k"); do
		lost=$((lost + $(grep -c "its lease was taken by another node" "$WORK/n$i.log")))
		fenced=$((fenced + $(grep -ci "fenced" "$WORK/n$i.log")))
		slow=$((slow + $(grep -c "warn  turn:" "$WORK/n$i.log")))
	done
	json="$json,\"leases_lost\":$lost,\"fenced_lines\":$fenced,\"slow_turn_lines\":$slow}"
	[ "$lost" -gt 0 ] && log "$side: $lost leases were taken from a live node during the run (n*.log)"
	cleanup_run
	if [ "$st" = 0 ] && [ -z "$OUTDIR" ] && [ "${FBX_PGNODES_KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		log "$side: logs kept in $WORK"
	fi
	echo "$json" >>"$JSONL"
	return "$st"
}

on_signal() {
	trap - INT TERM
	cleanup_run
	if [ -n "$WORK" ] && [ -z "$OUTDIR" ] && [ "${FBX_PGNODES_KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
	fi
	[ -n "${JSONL:-}" ] && [ -n "$ONE" ] && rm -f "$JSONL"
	log "interrupted"
	exit 130
}
trap on_signal INT TERM
trap cleanup_run EXIT

if [ -n "$ONE" ]; then
	JSONL=$(mktemp "${TMPDIR:-/tmp}/fbx-pgnodes-one.XXXXXX")
	run_side "$ONE" "${FBX_PGNODES_ROUND:-1}"
	st=$?
	cat "$JSONL"
	rm -f "$JSONL"
	exit "$st"
fi

# ------------------------------------------------------------ rounds
SIDES="lmdb"
for k in $NODES; do SIDES="$SIDES pg$k"; done
RES=$(mktemp "${TMPDIR:-/tmp}/fbx-pgnodes-results.XXXXXX")
JSONL=$RES
FAILED=0
START=$(date +%s)
for i in $(seq 1 "$PAIRS"); do
	for s in $SIDES; do
		log "== round $i of $PAIRS, $s (load $(uptime | sed 's/.*load average: //'))"
		run_side "$s" "$i" || FAILED=1
	done
done
ELAPSED=$(( $(date +%s) - START ))

AWKLIB='
function jf(l, k,   s) {
  if (!match(l, "\"" k "\":(\"[^\"]*\"|[^,}]*)")) return ""
  s = substr(l, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
  gsub(/"/, "", s); return s }
function isort(v, n,   i, j, t) {
  for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t } }
function median(v, n) { return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
'
# stat SIDE KEY: "n min med max"; ratio SIDE KEY: per round SIDE / lmdb
stat() {
	awk -v side="$1" -v key="$2" "$AWKLIB"'
	jf($0, "side") == side { x = jf($0, key); if (x != "") v[++n] = x + 0 }
	END { if (!n) { print 0; exit } isort(v, n); print n, v[1], median(v, n), v[n] }' "$RES"
}
ratio() {
	awk -v side="$1" -v key="$2" "$AWKLIB"'
	{ s = jf($0, "side"); x = jf($0, key); r = ++seen[s]; if (x == "") next
	  if (s == "lmdb") b[r] = x; else if (s == side) a[r] = x }
	END { for (p in a) if ((p in b) && b[p] + 0 > 0) v[++n] = a[p] / b[p]
	  if (!n) { print 0; exit } isort(v, n); print n, v[1], median(v, n), v[n] }' "$RES"
}
med() { set -- $(stat "$1" "$2"); [ "$1" = 0 ] && echo "-" || echo "$3"; }
r3() { set -- $1; [ "$1" = 0 ] && { echo "-"; return; }; printf '%.3f / %.3f / %.3f (%d)\n' "$2" "$3" "$4" "$1"; }
num() { [ "$1" = "-" ] && { echo "-"; return; }; printf "%'.0f\n" "$1" 2>/dev/null || echo "$1"; }
loads() { set -- $(stat "$1" load1_start); [ "$1" = 0 ] && echo "-" || printf "%.2f - %.2f\n" "$2" "$4"; }

echo
echo "fusebox cluster mode (issue 13): $(num "$DEVICES") devices over $ORGS organisations; PostgreSQL nodes: $NODES; lease $LEASE_MS ms; intake ${MODES:-(none)} for $INTAKE_S s; $PAIRS round(s), sides alternating (lmdb first), $ELAPSED s"
echo "machine: $(nproc) CPUs, $(uname -r); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && echo -dirty)"
echo
{
printf 'side\tfan-out deliveries/s (median)\tx LMDB per round (min / med / max (n))\tfan-out wall ms (median)\tdaemon CPU us/delivery\tmachine CPU us/delivery\tleases\tload before\n'
for s in $SIDES; do
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$(num "$(med "$s" fanout_deliveries_per_s)")" \
		"$([ "$s" = lmdb ] && echo 1 || r3 "$(ratio "$s" fanout_deliveries_per_s)")" \
		"$(num "$(med "$s" fanout_wall_ms)")" "$(med "$s" fanout_daemon_cpu_us_per_delivery)" \
		"$(med "$s" fanout_machine_cpu_us_per_delivery)" \
		"$(grep -F "\"side\":\"$s\"" "$RES" | tail -n 1 | sed -n 's/.*"leases":"\([^"]*\)".*/\1/p')" "$(loads "$s")"
done
} | column -t -s $'\t'
for m in $MODES; do
	echo
	{
	printf 'intake %s\tcommands/s (median)\tx LMDB per round (min / med / max (n))\tp50 / p99 ms (medians)\terrors (max)\tMOVED (max)\tcommands/commit\tdaemon CPU us/command\n' "$m"
	for s in $SIDES; do
		printf '%s\t%s\t%s\t%s / %s\t%s\t%s\t%s\t%s\n' "$s" "$(num "$(med "$s" "intake_${m}_commands_per_s")")" \
			"$([ "$s" = lmdb ] && echo 1 || r3 "$(ratio "$s" "intake_${m}_commands_per_s")")" \
			"$(med "$s" "intake_${m}_p50_ms")" "$(med "$s" "intake_${m}_p99_ms")" \
			"$(set -- $(stat "$s" "intake_${m}_errors"); echo "${4:--}")" \
			"$(set -- $(stat "$s" "intake_${m}_moved"); echo "${4:--}")" \
			"$(med "$s" "intake_${m}_commands_per_commit")" "$(med "$s" "intake_${m}_daemon_cpu_us_per_command")"
	done
	} | column -t -s $'\t'
done
echo
echo "enrolment ms / lease spread ms (medians): $(for s in $SIDES; do printf '%s %s / %s; ' "$s" "$(num "$(med "$s" enroll_ms)")" "$(num "$(med "$s" spread_ms)")"; done)"
echo "gateways' dup_after_durable_success / foreign (max): $(for s in $SIDES; do printf '%s %s / %s; ' "$s" "$(set -- $(stat "$s" dup_after_durable_success); echo "${4:--}")" "$(set -- $(stat "$s" foreign); echo "${4:--}")"; done)"
echo "leases taken from a live node during a run (max): $(for s in $SIDES; do printf '%s %s; ' "$s" "$(set -- $(stat "$s" leases_lost); echo "${4:--}")"; done)"
echo
cat "$RES"
rm -f "$RES"
exit "$FAILED"
