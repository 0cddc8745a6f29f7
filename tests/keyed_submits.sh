# keyed_submits.sh: what pg_commit_kill_test.sh and pg_hang_test.sh
# share; sourced by both once they have set B (a build's dispatcher
# directory) and defined ok and bad (count a check passed, failed).
# Keyed single-device query submits to the organisations org-001 ..
# org-004 of a simulated fleet (fusebox-devsim --orgs 4: devices
# org-00O-dNNNNNN), sent again with their key until recorded, and the
# checks that each ended recorded once and delivered once.

# ks_dev O I - the device submit I of organisation O goes to
ks_dev() { printf 'org-00%s-d%06d' "$1" $(($2 % 100)); }

# ks_sub O I [fuseboxctl options] - submit I of organisation O, key
# kO-I; fuseboxctl's exit status
ks_sub() {
  local o=$1 i=$2
  shift 2
  "$B/fuseboxctl" -o "org-00$o" "$@" submit --type query \
    --device "$(ks_dev "$o" "$i")" --idempotency-key "k$o-$i"
}

# ks_until O I - submit I of organisation O, sent again with its key
# until it answers 0 (30 s at most); 0 once it did, 1 if never
ks_until() {
  for _ in $(seq 60); do
    ks_sub "$1" "$2" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# ks_resend RC - every submit of RC (lines "O I STATUS") that did not
# answer 0, sent again with its key until it does (ks_until)
ks_resend() {
  local o i st
  while read -r o i st; do
    [ "$st" -eq 0 ] && continue
    ks_until "$o" "$i" && ok || bad "k$o-$i never recorded when sent again"
  done < "$1"
}

# ks_done O WANT - organisation O ends with WANT commands done (waits
# 30 s at most for the last deliveries)
ks_done() {
  local o=$1 want=$2 n=0
  for _ in $(seq 60); do
    n=$("$B/fuseboxctl" -o "org-00$o" list --limit 1000 2>/dev/null | grep -c ' done ')
    [ "$n" -eq "$want" ] && break
    sleep 0.5
  done
  [ "$n" -eq "$want" ] && ok ||
    bad "org-00$o: $n commands done, want $want: $("$B/fuseboxctl" -o "org-00$o" list --limit 1000 2>&1 | tail -3)"
}

# ks_dlog LOG WANT NAME - fusebox-devsim's --delivery-log LOG: WANT
# deliveries ACKed as succeeded, none received again after that
ks_dlog() {
  python3 - "$1" "$2" "$3" <<'PY' && ok || bad "delivery log: see above"
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
print(sys.argv[3] + ": received", recv, "acked", len(acked),
      "dup_after_durable_success", dup)
sys.exit(0 if dup == 0 and len(acked) == int(sys.argv[2]) else 1)
PY
}
