#!/usr/bin/env bash
# cluster_test.sh: issue 13 item 2, several fuseboxd nodes on one
# PostgreSQL store. Three nodes n1 n2 n3 (--node, --lease-ms 3000) on a
# schema of this test's own; a fleet enrolled through n1 alone spreads
# over the nodes by the idle rebalancing; one fusebox-devsim per node
# (its gateway endpoint, the same fleet, --delivery-log); one command
# per organisation submitted to its owner (following MOVED). Once some
# but not all results are in, the node owning the most organisations is
# killed with SIGKILL, and:
#  (a) its organisations are owned by the others after the kill (the
#      time it took is printed, failover_ms=N, not judged: the wait is
#      a hang guard of GUARD ms, not a speed limit);
#  (b) every command acknowledged before the kill is found (GetCommand
#      through a live node);
#  (c) every command finishes with every delivery succeeded (simulators
#      fail nothing), every device reached once (distinct delivery ids);
#  (d) merged delivery logs: no delivery received (R) after a durable
#      success (A) of the same id was logged by any simulator;
#  (e) the killed node restarted, a node owning organisations is
#      stopped (SIGSTOP) for 2 x lease: its organisations are taken
#      over while it stays stopped (again within the hang guard); one of them is kept busy by its new owner (a baking
#      rollout, so it is never handed back as idle); resumed (SIGCONT),
#      the node commits nothing for it: a submit sent while it was
#      stopped and one sent after get MOVED (31) or BUSY (13) (or
#      FENCED, 32), never success, no command appears, the lease stays
#      with the new owner, and its log says "fenced" or "lost". (If it
#      was stopped inside a transaction, the server ended its session
#      meanwhile and its first turn after fails: it answers STORAGE or
#      IO, nothing recorded, for about 100 ms; such a submit is asked
#      again.)
# Then every simulator and node stops cleanly (exit 0), no sanitizer
# report in any log.
#
# Run by CTest as fbx.tests.cluster_pg_test under tests/pg_cluster.sh
# run (FBX_TEST_PG_URL, psql on its Unix socket). Env: FBX_BIN_DIR (the
# build's dispatcher directory), FBX_CLUSTER_SUBMIT (the helper
# tests/cluster_submit.c), FBX_CLUSTER_DEVICES (default 100000),
# FBX_CLUSTER_ORGS (default 40), FBX_CLUSTER_LEASE_MS (default 3000),
# FBX_CLUSTER_DONE_S (time for every command to finish, default 300),
# FBXT_KEEP=1 keeps the directory. Fails (never skips) without
# PostgreSQL.
set -u
B=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
# tests/cluster_submit.c: one submit to one node, its answer as is
SUBMIT=${FBX_CLUSTER_SUBMIT:-$B/../tests/cluster_submit}
URL=${FBX_TEST_PG_URL:-}
N=${FBX_CLUSTER_DEVICES:-100000}
ORGS=${FBX_CLUSTER_ORGS:-40}
LEASE=${FBX_CLUSTER_LEASE_MS:-3000}
# how long a takeover is waited for: a guard against a hang, far beyond
# the lease plus a quarter lease for the survivors' next tick, so that
# a loaded machine does not fail the test (the time is printed)
GUARD=${FBX_CLUSTER_GUARD_MS:-60000}
DONE_S=${FBX_CLUSTER_DONE_S:-300}
NODES=3
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
say() { echo "cluster_test: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

if [ -z "$URL" ]; then
  echo "FAIL: FBX_TEST_PG_URL is not set (run under tests/pg_cluster.sh run)" >&2
  exit 1
fi
command -v psql >/dev/null || { echo "FAIL: psql not found" >&2; exit 1; }
[ -x "$SUBMIT" ] || { echo "FAIL: $SUBMIT not built (target cluster_submit)" >&2; exit 1; }

T=$(mktemp -d /tmp/fbx-cluster.XXXXXX)
chmod 700 "$T"
SCHEMA="fbxt_cluster_$$_$(($(date +%s) % 1000000))"
case "$URL" in
*\?*) STORE="$URL&options=-csearch_path%3D$SCHEMA" ;;
*) STORE="$URL?options=-csearch_path%3D$SCHEMA" ;;
esac
CTL="$B/fuseboxctl"
declare -a PID EP GW SIMPID
for k in $(seq 1 $NODES); do
  PID[k]=0 SIMPID[k]=0
  EP[k]="ipc://$T/n$k.c"
  GW[k]="ipc://$T/n$k.g"
done
STOPPED=0

cleanup() {
  local k
  [ "$STOPPED" -gt 0 ] && kill -CONT "${PID[STOPPED]}" 2>/dev/null
  for k in $(seq 1 $NODES); do
    [ "${SIMPID[k]}" -gt 0 ] && kill "${SIMPID[k]}" 2>/dev/null
    [ "${PID[k]}" -gt 0 ] && kill "${PID[k]}" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$fail" -eq 0 ] && [ -z "${FBXT_KEEP:-}" ]; then
    rm -rf "$T"
  else
    echo "test directory kept: $T (store: schema $SCHEMA; PG_KEEP=1 keeps the cluster)" >&2
  fi
}
trap cleanup EXIT
trap 'bad "interrupted (SIGINT)"; exit 130' INT
trap 'bad "interrupted (SIGTERM)"; exit 143' TERM

# q SQL: one psql query on the store's schema, rows as a|b lines
q() { psql "$STORE" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# owned: node|organisations for every live lease holder (not the
# duties lease, org '')
owned() {
  q "select node, count(*) from fbx_lease where org <> '' and node <> ''
       and expires > now() group by node order by node"
}
lease_table() {
  q "select org, node, epoch, expires > now() as live,
       round(extract(epoch from expires - now()) * 1000) as ms_left
     from fbx_lease order by org" 2>&1 | sed 's/^/  /' >&2
  q "select name, endpoint, ver, seen from fbx_node order by name" 2>&1 |
    sed 's/^/  node: /' >&2
}

ctl() { # ctl K ARGS...: fuseboxctl against node K
  local k=$1
  shift
  "$CTL" -e "${EP[k]}" "$@"
}

start_node() { # start_node K: start fuseboxd nK, wait until it answers
  local k=$1 i
  mkdir -p -m 700 "$T/n$k"
  "$B/fuseboxd" --data "$T/n$k" --server-key "$T/db/keys/server.key" \
    --store "$STORE" --node "n$k" --lease-ms "$LEASE" \
    --console "${EP[k]}" --gateway "${GW[k]}" --http 127.0.0.1:0 \
    >>"$T/n$k.log" 2>&1 &
  PID[k]=$!
  for i in $(seq 1 120); do
    if ctl "$k" --timeout 1000 --retries 0 status >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "${PID[k]}" 2>/dev/null; then
      wait "${PID[k]}"
      bad "node n$k exited with status $? at start; its log:"
      tail -n 20 "$T/n$k.log" >&2
      PID[k]=0
      return 1
    fi
    sleep 0.5
  done
  bad "node n$k does not answer after 60 s; its log:"
  tail -n 20 "$T/n$k.log" >&2
  return 1
}

SIMARGS=(--devices "$N" --orgs "$ORGS" --seed 7 --quiet)
# each simulator holds WINDOW deliveries and answers each after 500 ms:
# 2 x WINDOW results a second, so the fan-out of N takes about 20 s over
# three simulators whatever N is, and the kill finds deliveries in flight
WINDOW=$((N / 120 > 50 ? N / 120 : 50))
start_sim() { # start_sim K: the simulated gateway of node K
  local k=$1
  "$B/fusebox-devsim" "${SIMARGS[@]}" --no-enroll --gateway-id "sim-n$k" \
    --gateway-endpoint "${GW[k]}" --console-endpoint "${EP[k]}" \
    --window "$WINDOW" --ack-latency-ms 500 --fail-ratio 0 --offline-ratio 0 \
    --delivery-log "$T/dlog.n$k" --report "$T/report.n$k" \
    >>"$T/sim.n$k.log" 2>&1 &
  SIMPID[k]=$!
}

# others K: the running nodes other than K, one per line
others() {
  local k
  for k in $(seq 1 $NODES); do
    [ "$k" != "$1" ] && [ "${PID[k]}" -gt 0 ] && echo "$k"
  done
}

# --- set up: keys and principals in the store, three nodes -------------
if ! "$B/fuseboxd" init --data "$T/db" --store "$STORE" \
  --principal gw/gateway/-/'*' --principal 'rules/automation/operator/*' \
  >"$T/init.log" 2>&1; then
  cat "$T/init.log" >&2
  bad "fuseboxd init --store failed"
  exit 1
fi
export FUSEBOX_KEY="$T/db/keys/admin.key" \
  FUSEBOX_SERVER_KEY="$T/db/keys/server.pub" \
  FUSEBOX_GATEWAY_KEY="$T/db/keys/gw.key"
unset FUSEBOX_ACTOR FUSEBOX_CONSOLE FUSEBOX_ORG
for k in $(seq 1 $NODES); do
  start_node "$k" || exit 1
done
say "3 nodes up (lease $LEASE ms), store schema $SCHEMA"

# --- enroll through n1; the idle rebalancing spreads the organisations --
t0=$(now_ms)
if ! "$B/fusebox-devsim" "${SIMARGS[@]}" --enroll-only \
  --console-endpoint "${EP[1]}" --gateway-endpoint "${GW[1]}" \
  >>"$T/enroll.log" 2>&1; then
  bad "enrolment of $N devices through n1 failed; its log:"
  tail -n 20 "$T/enroll.log" >&2
  exit 1
fi
say "enrolled $N devices in $ORGS organisations through n1 in $(($(now_ms) - t0)) ms"
MIN_EACH=$((ORGS / 5)) # 8 of 40: well below the fair share (14)
[ "$MIN_EACH" -ge 1 ] || MIN_EACH=1
SPREAD_MS=$((LEASE * 20 > 60000 ? LEASE * 20 : 60000))
t0=$(now_ms)
while :; do
  own=$(owned)
  spread=1
  for k in $(seq 1 $NODES); do
    c=$(awk -F'|' -v n="n$k" '$1 == n { print $2 }' <<<"$own")
    [ "${c:-0}" -ge "$MIN_EACH" ] || spread=0
  done
  [ "$spread" = 1 ] && break
  if [ $(($(now_ms) - t0)) -gt "$SPREAD_MS" ]; then
    bad "after $SPREAD_MS ms not every node owns >= $MIN_EACH organisations: $(tr '\n' ' ' <<<"$own"); fbx_lease:"
    lease_table
    exit 1
  fi
  sleep 0.5
done
ok
say "spread after $(($(now_ms) - t0)) ms: $(tr '\n' ' ' <<<"$own")"

# --- one simulated gateway per node --------------------------------------
for k in $(seq 1 $NODES); do
  start_sim "$k"
done
for k in $(seq 1 $NODES); do
  for i in $(seq 1 120); do
    g=$(ctl "$k" status 2>/dev/null | awk '$1 == "gateways" { print $2 }')
    [ "${g:-0}" -ge 1 ] && break
    sleep 0.5
  done
  [ "${g:-0}" -ge 1 ] && ok || bad "no gateway session on n$k after 60 s (sim.n$k.log)"
done

# --- a storm sent to n1 follows MOVED to each organisation's owner -------
# (fusebox-devsim refused what n1 does not own as MOVED). Its reason
# settles for an hour: none of its locks reaches a device in this test
ctl 1 -o org-001 breaker config --global --reason cluster_storm --settle 3600 \
  >"$T/storm.cfg" 2>&1 || bad "breaker config for the storm: $(cat "$T/storm.cfg")"
# tripped by hand first: the global breaker holds the storm's locks in
# every node's organisations (its HELD is checked below)
ctl 1 -o org-001 breaker trip --global --reason cluster_storm \
  --note "cluster_test: held everywhere" >>"$T/storm.cfg" 2>&1 ||
  bad "global trip before the storm: $(cat "$T/storm.cfg")"
"$B/fusebox-devsim" "${SIMARGS[@]}" --no-enroll --storm-only --storm 200 \
  --storm-seconds 0 --storm-reason cluster_storm \
  --storm-key "$T/db/keys/rules.key" --console-endpoint "${EP[1]}" \
  >"$T/storm.out" 2>"$T/storm.err" || bad "the storm exited $? ($T/storm.err)"
line=$(grep '^storm_total' "$T/storm.out")
say "storm through n1: $line"
kv() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
[ "$(kv answered)" = 200 ] && [ "$(kv refused)" = 0 ] &&
  [ "$(kv moved)" -ge 1 ] && ok ||
  bad "the storm through n1 did not follow MOVED: $line $(grep refused_by "$T/storm.out" | head -3)"
# a global breaker's HELD with --all-orgs is the sum of every
# organisation's share, each counted by its owner (it was one node's
# count): with the organisations' rows it adds up to the held commands
# summary counts in the store
ctl 2 -o org-001 breaker status --all-orgs --json >"$T/bs.json" 2>&1
ctl 2 summary --all-orgs --origin automatic --json >"$T/sum.json" 2>&1
if why=$(python3 - "$T/bs.json" "$T/sum.json" <<'PYEOF'
import json, sys
b = json.load(open(sys.argv[1]))["breakers"]
tot = [json.loads(l) for l in open(sys.argv[2]) if l.strip()][-1]
g = sum(x["held"] for x in b if x["org"] == "*")
o = sum(x["held"] for x in b if x["org"] != "*")
print("breaker status --all-orgs: %d held by global breakers, %d by organisations'; summary: %d held" % (g, o, tot["held"]))
sys.exit(0 if tot["org"] == "TOTAL" and g + o == tot["held"] and g > 0 else 1)
PYEOF
); then ok; say "$why"; else bad "$why"; fi


# --- one command per organisation, to its owner --------------------------
# owner_ep ORG: the advertised endpoint of ORG's live owner ("" = none)
owner_ep() {
  q "select n.endpoint from fbx_lease l join fbx_node n on n.name = l.node
     where l.org = '$1' and l.node <> '' and l.expires > now()"
}
PAYLOAD='{"version":"15.2"}'
# submit_to ORG KEY [ARGS...]: an os_update to every device of ORG
# (ARGS added) through ORG's owner, following MOVED to the endpoint it
# names, retrying BUSY; sets SUB_ID (the command id, "" on failure),
# SUB_EP (where it was accepted), SUB_MOVED (MOVED answers followed)
submit_to() {
  local org=$1 key=$2 out st err try
  shift 2
  SUB_ID= SUB_MOVED=0 SUB_EP=$(owner_ep "$org")
  [ -n "$SUB_EP" ] || SUB_EP=${EP[FALLBACK_K]}
  for try in $(seq 1 40); do
    out=$("$CTL" -e "$SUB_EP" -o "$org" submit --type os_update --all \
      --origin scheduled --payload "$PAYLOAD" --idempotency-key "$key" \
      "$@" 2>"$T/submit.err")
    st=$?
    err=$(cat "$T/submit.err")
    if [ $st -eq 0 ]; then
      SUB_ID=$(head -n 1 <<<"$out")
      return 0
    fi
    if grep -q 'MOVED (31)' <<<"$err"; then
      # "organisation 'X' is owned by node 'N' at ENDPOINT; send it there"
      SUB_EP=$(grep -o "' at [^ ;]*" <<<"$err" | tail -n 1 | cut -c6-)
      SUB_MOVED=$((SUB_MOVED + 1))
      [ -n "$SUB_EP" ] || { bad "$org: MOVED without an endpoint: $err"; return 1; }
      continue
    fi
    if grep -q 'BUSY (13)' <<<"$err"; then
      sleep 0.5
      continue
    fi
    bad "$org: submit through $SUB_EP exit $st: $err"
    return 1
  done
  bad "$org: no command after 40 tries (last through $SUB_EP: $err)"
  return 1
}
declare -A CMD=()
FALLBACK_K=1 # where an organisation nobody owns is sent
for o in $(seq 1 "$ORGS"); do
  org=$(printf 'org-%03d' "$o")
  submit_to "$org" "cluster-$org" || continue
  CMD[$org]=$SUB_ID
  [ "$SUB_MOVED" -gt 0 ] && say "$org: followed MOVED $SUB_MOVED time(s) to $SUB_EP"
done
say "${#CMD[@]} commands submitted"
[ "${#CMD[@]}" -eq "$ORGS" ] && ok || bad "${#CMD[@]} of $ORGS commands submitted"
# command ids are store-wide (delivery ids are made from them)
dups=$(printf '%s\n' "${CMD[@]}" | sort | uniq -d | tr '\n' ' ')
[ -z "$dups" ] && ok || bad "command ids given twice by different nodes: $dups"

# --- kill -9 the node owning the most organisations, mid-way -------------
acks() { cat "$T"/dlog.n* 2>/dev/null | grep -c '^A '; }
t0=$(now_ms)
while :; do
  a=$(acks)
  [ "$a" -ge $((N / 10)) ] && break
  if [ $(($(now_ms) - t0)) -gt 300000 ]; then
    bad "only $a of $N results durable after 300 s, before any kill"
    lease_table
    exit 1
  fi
  sleep 0.1
done
victim=$(owned | sort -t'|' -k2,2nr | head -n 1 | cut -d'|' -f1)
vk=${victim#n}
vorgs=$(q "select org from fbx_lease where node = '$victim' and expires > now() order by org")
nv=$(grep -c . <<<"$vorgs")
{ # (bash's "Killed" notice to /dev/null)
  kill -9 "${PID[vk]}"
  tkill=$(now_ms)
  wait "${PID[vk]}"
} 2>/dev/null
PID[vk]=0
if [ "$a" -ge "$N" ]; then
  bad "every result ($a) was in before the kill: nothing in flight to fail over"
fi
say "killed $victim (owner of $nv leases: $(tr '\n' ' ' <<<"$vorgs" | sed 's/^ /(duties) /')) with $a of $N results durable"
inlist=$(sed "s/.*/'&'/" <<<"$vorgs" | paste -sd, -)

# (a0) at once, through a live node, a request its owner answers (the
# breaker status) for one of the victim's organisations: until the
# victim's lease runs out the live node answers MOVED to it. fuseboxctl
# names the owner that does not answer and exits 75 (retry later); it
# said the live node it asked was unreachable (69). Served (0) or BUSY
# (75) are right too, if the lease ran out meanwhile.
vorg=$(grep -v '^$' <<<"$vorgs" | head -n 1)
live1=$(others "$vk" | head -n 1)
out=$(ctl "$live1" --timeout 1000 --retries 0 -o "$vorg" breaker status 2>&1); st=$?
case "$st" in
  0) ok ;;
  75) if grep -q "BUSY (13)" <<<"$out" ||
         grep -q "no reply from .*, the node that owns organisation '$vorg' (named by the MOVED answer of ${EP[live1]}).*retry then" <<<"$out"; then ok
      else bad "n$live1 for $vorg right after the kill: exit 75: $out"; fi ;;
  *) bad "n$live1 for $vorg right after the kill: exit $st (want 0 or 75): $out" ;;
esac
say "right after the kill, n$live1 for $vorg: exit $st: $(head -c 300 <<<"$out")"

# (a) failover: every lease of the victim live at another node
fo=
while :; do
  left=$(q "select count(*) from fbx_lease where org in ($inlist)
              and (node = '$victim' or node = '' or expires <= now())")
  if [ "$left" = 0 ]; then
    fo=$(($(now_ms) - tkill))
    break
  fi
  [ $(($(now_ms) - tkill)) -gt "$GUARD" ] && break
  sleep 0.05
done
if [ -n "$fo" ]; then
  echo "failover_ms=$fo (lease $LEASE ms)"
  ok
else
  bad "$left of $victim's $nv leases not taken over $GUARD ms after the kill; fbx_lease:"
  lease_table
fi
say "after the failover: $(owned | tr '\n' ' ')"
mapfile -t LIVE < <(others "$vk")
# status names the node that answered and what it holds (an operator
# had only SQL on fbx_lease to tell); the duties are one node's
nd=0
for k in "${LIVE[@]}"; do
  n=$(q "select count(*) from fbx_lease where node = 'n$k' and expires > now()")
  out=$(ctl "$k" status 2>&1)
  if grep -qE "^node +n$k \(holds [0-9]+ leases?" <<<"$out"; then ok
  else bad "status of n$k lacks its node line: $out"; fi
  grep -q "the cluster-wide duties" <<<"$out" && nd=$((nd + 1))
  say "n$k: $(grep '^node' <<<"$out") (fbx_lease: $n)"
done
[ "$nd" -le 1 ] && ok || bad "$nd live nodes say they hold the duties"

# (b) every command acknowledged before the kill is there, through any
# live node
i=0 missing=
for org in "${!CMD[@]}"; do
  k=${LIVE[i % ${#LIVE[@]}]}
  i=$((i + 1))
  out=$(ctl "$k" -o "$org" show "${CMD[$org]}" --limit 0 --json 2>&1)
  if [ $? -ne 0 ] || ! grep -q "\"id\":${CMD[$org]}," <<<"$out"; then
    missing+=" $org/${CMD[$org]}(n$k: $out)"
  fi
done
[ -z "$missing" ] && ok || bad "commands acknowledged before the kill not found:$missing"

# (c) every command done, every delivery succeeded
# jnum KEY JSON: the first number KEY has in JSON
jnum() { grep -o "\"$1\":[0-9][0-9]*" <<<"$2" | head -n 1 | cut -d: -f2; }
declare -A DONE=()
t0=$(now_ms)
while [ "${#DONE[@]}" -lt "${#CMD[@]}" ]; do
  for org in "${!CMD[@]}"; do
    [ -n "${DONE[$org]:-}" ] && continue
    out=$(ctl "${LIVE[0]}" -o "$org" show "${CMD[$org]}" --limit 0 --json 2>/dev/null)
    grep -q '"state":"done"' <<<"$out" && DONE[$org]=$out
  done
  if [ $(($(now_ms) - t0)) -gt $((DONE_S * 1000)) ]; then
    for org in "${!CMD[@]}"; do
      [ -n "${DONE[$org]:-}" ] && continue
      out=$(ctl "${LIVE[0]}" -o "$org" show "${CMD[$org]}" --limit 0 --json 2>&1)
      echo "  not done: $org/${CMD[$org]} $(grep -o '"state":"[a-z_]*"' <<<"$out" | head -n 1) $(grep -o '"counts":{[^}]*}' <<<"$out")" >&2
      o=$(q "select node from fbx_lease where org = '$org'")
      echo "    owner: $o" >&2
    done
    break
  fi
  [ "${#DONE[@]}" -lt "${#CMD[@]}" ] && sleep 1
done
[ "${#DONE[@]}" -eq "${#CMD[@]}" ] && ok ||
  bad "$((${#CMD[@]} - ${#DONE[@]})) of ${#CMD[@]} commands not done after $DONE_S s"
say "${#DONE[@]} commands done $(($(now_ms) - tkill)) ms after the kill"
total=0 notok=
for org in "${!DONE[@]}"; do
  out=${DONE[$org]}
  dl=$(jnum deliveries "$out")
  sc=$(jnum succeeded "$out")
  total=$((total + ${dl:-0}))
  [ -n "$dl" ] && [ "$dl" = "$sc" ] || notok+=" $org/${CMD[$org]}:$(grep -o '"counts":{[^}]*}' <<<"$out")"
done
[ -z "$notok" ] && ok || bad "commands with deliveries not succeeded:$notok"
if [ "${#DONE[@]}" -eq "$ORGS" ]; then
  [ "$total" -eq "$N" ] && ok || bad "the commands reached $total devices, the fleet is $N"
fi

# --- (e) restart the killed node; SIGSTOP an owner past its lease -------
start_node "$vk" && ok
say "$victim restarted: $(owned | tr '\n' ' ')"
# let the restarted node take its share of the now idle organisations
t0=$(now_ms)
while [ $(($(now_ms) - t0)) -lt $((LEASE * 10)) ]; do
  c=$(owned | awk -F'|' -v n="$victim" '$1 == n { print $2 }')
  [ "${c:-0}" -ge "$MIN_EACH" ] && break
  sleep 0.5
done
say "before the pause: $(owned | tr '\n' ' ')"
pn=$(owned | sort -t'|' -k2,2nr | head -n 1 | cut -d'|' -f1)
pk=${pn#n}
porgs=$(q "select org from fbx_lease where node = '$pn' and org <> '' and expires > now() order by org")
porg=$(head -n 1 <<<"$porgs")
pinlist=$(sed "s/.*/'&'/" <<<"$porgs" | paste -sd, -)
plog=$(wc -l <"$T/$pn.log")
rk=$(others "$pk" | head -n 1) # a node that stays up, to go through
kill -STOP "${PID[pk]}"
STOPPED=$pk
say "stopped $pn (owner of $(grep -c . <<<"$porgs") organisations) for at least $((2 * LEASE)) ms"
sleep "$(awk -v ms=$((2 * LEASE)) 'BEGIN { printf "%.3f", ms / 1000 }')"
tstop=$(now_ms)
while :; do
  left=$(q "select count(*) from fbx_lease where org in ($pinlist)
              and (node = '$pn' or node = '' or expires <= now())")
  [ "$left" = 0 ] && break
  [ $(($(now_ms) - tstop)) -gt "$GUARD" ] && break
  sleep 0.05
done
[ "$left" = 0 ] && ok || {
  bad "$left of the stopped $pn's organisations not taken over $((2 * LEASE + GUARD)) ms after the stop; fbx_lease:"
  lease_table
}
# the new owner keeps $porg busy (a rollout baking after its first wave
# of one device), so it never hands it back as idle: the resumed node
# cannot get it again by the rebalancing, and no submit of its for it
# may succeed
FALLBACK_K=$rk
if submit_to "$porg" "cluster-guard-$porg" --rollout --first 1 --bake 600; then
  ok
  say "$porg kept busy by command $SUB_ID (a baking rollout) at $SUB_EP"
else
  bad "no baking rollout in $porg through its new owner"
fi
newowner=$(q "select node from fbx_lease where org = '$porg'")
ncmds() {
  ctl "$rk" -o "$porg" list --limit 10000 --json 2>/dev/null |
    grep -o '"id":[0-9]*' | sort -u | wc -l
}
before=$(ncmds)
# fenced_submit WHEN KEY: what the resumed node answered a submit for
# its former organisation itself (cluster_submit: MOVED not followed):
# MOVED naming the owner, BUSY or FENCED, never success
# A node stopped inside a transaction finds, when it resumes, that the
# server ended its session (idle_in_transaction_session_timeout, half a
# lease, so that it does not block the others): that turn fails and the
# node refuses writes with STORAGE or IO (nothing recorded; STORAGE when
# a store statement meets the closed connection first, IO when the lease
# statement does: "lease statement failed" in its log) until its retry
# 100 ms later, which rebuilds from the store and learns of the lost
# leases. Either is asked again (the same idempotency key) until the
# node answers otherwise, within 10 s.
fenced_submit() {
  local out st ms name try=0
  while :; do
    out=$(cat "$T/fenced.$2.out")
    read -r st ms <"$T/fenced.$2.rc"
    name=$(sed -n 's/^err=[0-9]* name=\([A-Z_]*\) .*/\1/p' <<<"$out")
    [ "$st" -eq 0 ] && { [ "$name" = STORAGE ] || [ "$name" = IO ]; } &&
      [ "$try" -lt 20 ] || break
    try=$((try + 1))
    say "resumed $pn answered a submit ($1) for $porg with $name (its session ended while it was stopped; nothing recorded): asking again ($try)"
    sleep 0.5
    submit_to_paused "$2"
  done
  if [ "$st" -ne 0 ]; then
    bad "the resumed $pn did not answer a submit ($1) for $porg within 30 s: $out"
  elif [ "$name" = OK ]; then
    bad "the resumed $pn accepted a submit ($1) for $porg (now $newowner's): $out"
  elif [ "$name" = MOVED ] || [ "$name" = BUSY ] || [ "$name" = FENCED ]; then
    ok
    say "resumed $pn answered a submit ($1) for $porg in $ms ms: $out"
    if [ "$name" = MOVED ]; then
      grep -q " owner=$newowner " <<<"$out" && ok ||
        bad "the resumed $pn's MOVED for $porg does not name its owner $newowner: $out"
    fi
  else
    bad "the resumed $pn answered a submit ($1) for $porg after $ms ms with $out, not MOVED/BUSY/FENCED"
  fi
}
submit_to_paused() { # KEY: submit to the paused node, answer in files
  local t0=$(now_ms)
  "$SUBMIT" "${EP[pk]}" "$porg" "cluster-fenced-$1" 30000 \
    >"$T/fenced.$1.out" 2>&1
  echo "$? $(($(now_ms) - t0))" >"$T/fenced.$1.rc"
}
# one request waits in its socket while the node is stopped, so the node
# may read it before it learns of its lost leases: its commit is fenced
submit_to_paused queued &
qpid=$!
sleep 0.5
kill -CONT "${PID[pk]}"
STOPPED=0
wait "$qpid"
fenced_submit "sent while it was stopped" queued
submit_to_paused after
fenced_submit "after it resumed" after
after=$(ncmds)
[ "$after" = "$before" ] && ok ||
  bad "$porg had $before commands before the resumed $pn's submits and $after after"
o=$(q "select node from fbx_lease where org = '$porg' and expires > now()")
[ "$o" = "$newowner" ] && ok ||
  bad "$porg is owned by '$o' after the resumed $pn's submits, not by '$newowner' (its busy owner)"
t0=$(now_ms)
# its log since the pause
plines() { tail -n +$((plog + 1)) "$T/$pn.log"; }
until plines | grep -qE 'fenced|lost'; do
  if [ $(($(now_ms) - t0)) -gt $((2 * LEASE)) ]; then
    bad "the resumed $pn's log says neither 'fenced' nor 'lost'; its tail:"
    plines | tail -n 15 >&2
    break
  fi
  sleep 0.2
done
plines | grep -qE 'fenced|lost' && { ok; say "$pn: $(plines | grep -E 'fenced|lost' | head -n 1)"; }

# --- each node's web console (--http 127.0.0.1:0) ------------------------
# A login asked of a node opens that node's page (it opened the page of
# the cluster-wide duties' owner, whatever node was asked: another
# node's page could not be used). Its overview shows the organisations
# other nodes own as unknown (null: the page's ?) with their owner,
# never as 0, and says so in one line per other node.
for k in $(seq 1 $NODES); do
  [ "${PID[k]}" -gt 0 ] || continue
  hp=$(sed -n 's/.*http: serving .*(port \([0-9]*\)).*/\1/p' "$T/n$k.log" | tail -n 1)
  url=$(ctl "$k" -o org-001 web login --note "cluster_test" 2>"$T/weblogin.n$k.err")
  up=$(sed -n 's|^http://[^:/]*:\([0-9]*\)/.*|\1|p' <<<"$url")
  if [ -z "$hp" ] || [ "$up" != "$hp" ]; then
    bad "n$k: web login answered '${url%%#*}', n$k serves port ${hp:-?}: $(cat "$T/weblogin.n$k.err")"
    continue
  fi
  ok
  code=$(curl -s -o "$T/ov.n$k" -w '%{http_code}' \
    -H "Authorization: Bearer ${url##*#token=}" "http://127.0.0.1:$hp/api/overview")
  if why=$(python3 - "$T/ov.n$k" "n$k" "$code" <<'PYEOF'
import json, sys
path, me, code = sys.argv[1], sys.argv[2], sys.argv[3]
if code != "200":
    print("HTTP " + code + " " + open(path).read()[:300]); sys.exit(1)
o = json.load(open(path))
top, errs = o["top_orgs"], o.get("errors") or []
other = [x for x in top if x.get("node")]
mine = [x for x in top if not x.get("node")]
bad = [x["org"] for x in other
       if x["node"] == me or x["held"] is not None or x["open_breakers"] is not None]
if bad:
    print("another node's organisations with figures, or as this node's: " + ", ".join(bad)); sys.exit(1)
if any(top.index(a) < top.index(b) for a in other for b in mine):
    print("another node's organisation above this node's own: " + str([x["org"] for x in top])); sys.exit(1)
nodes = set(e.split("'")[1] for e in errs if e.startswith("owned by node '"))
if not nodes or me in nodes:
    print("no line per other node, or one for this node: " + "; ".join(errs)[:400]); sys.exit(1)
for n in set(x["node"] for x in other):
    if n not in nodes:
        print("no errors line for node " + n + ": " + "; ".join(errs)[:400]); sys.exit(1)
if any("send it there" in e for e in errs):
    print("a MOVED line per figure left: " + "; ".join(errs)[:400]); sys.exit(1)
# the global breaker tripped before the storm: where it shows, its
# counts are this node's organisations' only, and say so
if [b for b in o["needs_human"]["breakers"] if b["org"] == "*" and not b.get("partial")]:
    print("a global breaker's row not marked partial: " + str(o["needs_human"]["breakers"])[:300]); sys.exit(1)
print("other nodes named: %s; top %d: %d of its own, %d of others shown as ?; %d global breaker row(s) marked partial" % (
      ", ".join(sorted(nodes)), len(top), len(mine), len(other),
      len([b for b in o["needs_human"]["breakers"] if b["org"] == "*"])))
PYEOF
  ); then
    ok; say "n$k's overview: $why"
  else
    bad "n$k's overview: $why"
  fi
done

# --- stop: simulators, then nodes; each exits 0 --------------------------
for k in $(seq 1 $NODES); do
  kill "${SIMPID[k]}" 2>/dev/null
  wait "${SIMPID[k]}"
  st=$?
  SIMPID[k]=0
  [ $st -eq 0 ] && ok || bad "simulator of n$k exit status $st (sim.n$k.log)"
done
for k in $(seq 1 $NODES); do
  [ "${PID[k]}" -gt 0 ] || continue
  kill "${PID[k]}"
  wait "${PID[k]}"
  st=$?
  PID[k]=0
  [ $st -eq 0 ] && ok || bad "node n$k exit status $st after SIGTERM (n$k.log)"
done

# (c) the simulators: nothing failed, no exactly-once violation seen by
# one simulator
for k in $(seq 1 $NODES); do
  r=$(head -n 1 "$T/report.n$k" 2>/dev/null)
  say "sim n$k: $r"
  f=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$r")
  d=$(sed -n 's/.*dup_after_durable_success=\([0-9]*\).*/\1/p' <<<"$r")
  fr=$(sed -n 's/.*foreign=\([0-9]*\).*/\1/p' <<<"$r")
  [ "${f:-x}" = 0 ] && [ "${d:-x}" = 0 ] && [ "${fr:-x}" = 0 ] && ok ||
    bad "simulator of n$k: failed=${f:-?} dup_after_durable_success=${d:-?} foreign=${fr:-?}"
done

# (d) merged delivery logs, in CLOCK_MONOTONIC order: no R after an A of
# the same id, whichever simulators logged them
for k in $(seq 1 $NODES); do
  awk -v s="n$k" '{ print $3, $1, $2, s }' "$T/dlog.n$k"
done | sort -n -k1,1 >"$T/dlog.merged"
read -r viol nrecv nacked < <(awk -v cmds="${CMD[*]}" '
  BEGIN { n = split(cmds, c, " "); for (i = 1; i <= n; i++) main[c[i]] = 1 }
  $2 == "A" { if (!($3 in a)) { a[$3] = $4; at[$3] = $1; na++ } }
  $2 == "R" {
    # distinct deliveries of the 40 commands (not of the guard)
    if (!($3 in r) && (int($3 / 16777216) in main)) { r[$3] = 1; nr++ }
    if ($3 in a) {
      v++
      if (v <= 10)
        printf "  delivery %s: durable success at sim %s (%s ns), received again by sim %s at %s ns\n", $3, a[$3], at[$3], $4, $1 > "/dev/stderr"
    }
  }
  END { print v + 0, nr + 0, na + 0 }' "$T/dlog.merged")
say "delivery logs: $nrecv distinct deliveries of the commands received, $nacked durable successes, $viol received after a durable success"
[ "$viol" = 0 ] && ok || bad "$viol deliveries received again after a durable success was logged (above)"
[ "$nrecv" -eq "$N" ] && ok || bad "$nrecv distinct delivery ids received, the fleet is $N"

# sanitizer reports in any log
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/*.log >/dev/null 2>&1; then
  bad "sanitizer reports in: $(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/*.log | tr '\n' ' ')"
else
  ok
fi

echo "cluster_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
