#!/usr/bin/env bash
# cli_test.sh: the command-line surface of fuseboxctl, fuseboxd and
# fusebox-devsim as an operator meets it: whole option names only,
# -V, errors that name the option as typed, one line for a bad ini,
# --limit 0, exit statuses in --help, waiting for the socket of a daemon
# that is starting, --retries against a frozen engine (TIMEOUT, not
# UNREACHABLE), a wrong server key named as such, `submit --wait`
# saying that no gateway is connected, `principal keygen`, the paging
# lines, breaker settings of the global breaker only, and exit 75
# for IO when the store cannot be written, with the generated
# idempotency key shown on stderr also under --json.
# Run by CTest (fbx.tests.cli_test) with FBX_BIN_DIR set.
set -u
B=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
T=$(mktemp -d /tmp/fbx-cli.XXXXXX)
pass=0 fail=0 D=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect STATUS GREP-PATTERN -- command...: exit status and output
expect() {
  local want=$1 pat=$2; shift 3
  local out st
  out=$("$@" 2>&1); st=$?
  if [ "$st" != "$want" ]; then bad "$* -> exit $st, want $want: $out"; return; fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then
    bad "$* -> output lacks /$pat/: $out"; return; fi
  ok
}
cleanup() {
  [ -n "$D" ] && kill -CONT "$D" 2>/dev/null && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  if [ "$fail" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT
CTL="$B/fuseboxctl"
export FUSEBOX_CONSOLE="ipc://$T/c.sock" FUSEBOX_ORG=acme
unset FUSEBOX_ACTOR
# keys DATA: the server and client keys (`fuseboxd init`), for the CLI
# and the simulator through the environment
keys() {
  "$B/fuseboxd" init --data "$1" --principal gw/gateway/-/'*' \
    --principal rules/automation/operator/'*' >/dev/null ||
    { echo "FAIL: fuseboxd init --data $1" >&2; exit 1; }
  export FUSEBOX_KEY="$1/keys/admin.key" FUSEBOX_SERVER_KEY="$1/keys/server.pub" \
    FUSEBOX_GATEWAY_KEY="$1/keys/gw.key"
}
keys "$T/db"

# --- without a daemon ---------------------------------------------------
expect 64 "unknown option '--typ'.*--type" -- "$CTL" submit --typ lock --device d1
expect 64 "unknown option '--exec'.*--execute" -- "$CTL" rollback --command 1 --exec
expect 64 "unknown option '--end'" -- "$CTL" --end "ipc://$T/x" status
expect 64 "unknown option '--vers'" -- "$CTL" --vers
expect 0 "^fuseboxctl [0-9]" -- "$CTL" -V
expect 0 "^fuseboxctl [0-9]" -- "$CTL" --version
expect 0 "^fuseboxctl [0-9]" -- "$CTL" status -V
expect 0 "Exit status: 0 ok, 64 usage" -- "$CTL" --help
expect 0 "Exit status: 0 ok, 64 usage" -- "$CTL" devices --help
expect 0 "Exit status: 0 clean stop" -- "$B/fuseboxd" --help
expect 0 "Exit status: 0 ok, 64 usage" -- "$B/fusebox-devsim" --help
expect 64 "bad --limit '0' \(1\.\.10000\)" -- "$CTL" devices --limit 0
expect 64 "bad --limit '0' \(1\.\.10000\)" -- "$CTL" list --limit 0
# a refused option is named for what it is: unknown, abbreviated, or
# missing its value (all were "bad or incomplete option")
expect 64 "unknown option '--actor-name' \(see list --help\)" -- "$CTL" list --actor-name x
expect 64 "unknown option '--typ' \(did you mean --type\?" -- "$CTL" submit --typ lock
expect 64 "option '--type' needs a value \(see submit --help\)" -- "$CTL" submit --type
expect 64 "option '-o' needs a value" -- "$CTL" list -o
expect 64 "option '--org' needs a value \(see list --help\)" -- "$CTL" list --org
expect 64 "option '--json' takes no value" -- "$CTL" list --json=1
expect 64 "unknown option '--bogus' \(see fuseboxctl --help\)" -- "$CTL" --bogus status
# settings read from the global breaker only are refused on an
# organisation's (they were stored there and never used)
expect 64 "settings of the global breaker.*add --global" -- "$CTL" breaker config --reason r --settle 0
expect 64 "settings of the global breaker.*add --global" -- "$CTL" breaker config --reason r --global-orgs 2
expect 64 "unknown option '--dev'.*--devices" -- "$B/fusebox-devsim" --dev 3
expect 64 "unknown option '--dat'.*--data" -- "$B/fuseboxd" --dat "$T/x"
expect 64 "bad value for --heartbeat-ms: 1$" -- "$B/fuseboxd" --heartbeat-ms 1
expect 64 "bad value for -l: loud" -- "$B/fuseboxd" -l loud
# no request can name it: every global control would be refused
expect 64 "bad value for --admin-org: org 1$" -- "$B/fuseboxd" --admin-org "org 1"
printf '[fuseboxd]\nheartbeat_ms = 1\n' > "$T/bad.ini"
out=$("$B/fuseboxd" -c "$T/bad.ini" 2>&1); st=$?
if [ $st -eq 78 ] && [ "$(wc -l <<<"$out")" -eq 1 ] &&
   grep -q "bad.ini:2: heartbeat_ms = 1: bad value" <<<"$out"; then ok
else bad "bad ini: exit $st, want 78 and one line: $out"; fi
printf '[fuseboxd]\nbogus = 1\n' > "$T/bad2.ini"
expect 78 "bad2.ini:2: bogus = 1: unknown setting" -- "$B/fuseboxd" -c "$T/bad2.ini"

# nothing listens: UNREACHABLE after the bounded wait, saying why
t0=$(date +%s%N)
expect 69 "UNREACHABLE.*no socket file" -- "$CTL" --timeout 1000 status
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $ms -ge 900 ] && [ $ms -lt 5000 ] && ok || bad "unreachable after $ms ms, want ~1000"

# --- a daemon that is starting: the first request waits for it ---------
"$B/fuseboxd" --data "$T/db" --console "ipc://$T/c.sock" \
  --gateway "ipc://$T/g.sock" 2>"$T/daemon.log" &
D=$!
expect 0 "^gateways +0" -- "$CTL" status
expect 0 "" -- "$CTL" enroll --device d1 --platform android
expect 65 "NOT_FOUND" -- "$CTL" show 999 --limit 0
expect 0 "d1" -- "$CTL" devices --limit 1
# a page's "more:" line is the command as typed with the next --after:
# pasted, it pages on in the same organisation, group and limit (it
# once dropped them all and listed the default organisation's devices)
for i in 1 2 3 4 5; do
  "$CTL" -o acme2 enroll --device "g$i" --platform ios --group sales >/dev/null ||
    bad "enroll g$i"
done
"$CTL" -o acme2 enroll --device h1 --platform ios --group office >/dev/null || bad "enroll h1"
out=$("$CTL" -o acme2 devices --group sales --limit 2 2>&1)
more=$(sed -n 's/^more: fuseboxctl //p' <<<"$out")
[ "$more" = "-o acme2 devices --group sales --limit 2 --after g2" ] && ok ||
  bad "devices page 1: more line '$more': $out"
out=$(eval "\"\$CTL\" $more" 2>&1)
[ "$(grep -c '^g[0-9] ' <<<"$out")" -eq 2 ] && grep -q '^g3 ' <<<"$out" &&
  grep -q '^g4 ' <<<"$more$out" && ! grep -q '^\(d1\|h1\) ' <<<"$out" &&
  grep -q '^more: fuseboxctl -o acme2 devices --group sales --limit 2 --after g4$' <<<"$out" &&
  ok || bad "devices page 2 (pasted more line): $out"
# the count line of a group's page says the organisation's count is
# the organisation's (6), not the group's (5 in sales); groups counts it
grep -q '^2 shown of group sales, 6 in organisation (fuseboxctl groups' <<<"$out" &&
  ok || bad "devices --group count line: $out"
expect 0 "^sales +5" -- "$CTL" -o acme2 groups
expect 0 "^0 devices of group sales without a check-in for 1d or longer .*, 6 in organisation" -- "$CTL" -o acme2 devices --group sales --stale 1d
# a key pair its owner makes (principal keygen: no engine asked), then
# registered by an admin with its public key: the owner's file works
out=$("$CTL" principal keygen bob --key-out "$T/bob.key" 2>&1); st=$?
pub=$(sed -n 's/^public key: //p' <<<"$out")
[ "$st" -eq 0 ] && [ ${#pub} -eq 40 ] && [ "$(stat -c %a "$T/bob.key")" = 600 ] &&
  ok || bad "principal keygen: exit $st: $out"
# an existing file is not overwritten: 73 too (it was 65, which the
# documented exit statuses give to refused data)
expect 73 "IO \(18\): cannot create .*bob.key: it exists" -- "$CTL" principal keygen bob --key-out "$T/bob.key"
expect 73 "IO \(18\): cannot create .*bob.key: it exists" -- "$CTL" principal rotate admin --key-out "$T/bob.key"
expect 64 "takes only NAME and --key-out" -- "$CTL" principal keygen bob --key-out "$T/b2.key" --orgs acme
# a file that cannot be created: 73 (EX_CANTCREAT), not 75 (retry later)
expect 73 "IO \(18\): cannot create .*nodir/b3.key: No such file or directory" -- "$CTL" principal keygen bob --key-out "$T/nodir/b3.key"
# the line it prints for the admin, pasted (the key has shell
# characters: ! * ? & ...), with the kind, organisations and roles
line=$(sed -n 's/^  fuseboxctl principal add //p' <<<"$out" |
  sed 's/KIND/operator/; s/ORGS/acme/; s/\[--roles ROLES\]/--roles viewer/')
expect 0 "principal bob added" -- eval "\"\$CTL\" principal add $line"
# principal list is a table (it once printed the engine's JSON lines)
out=$("$CTL" principal list 2>&1)
row=$(awk '$1 == "bob" { print $2, $3, $4, $5, $7, $8 }' <<<"$out")
[ "$row" = "operator viewer acme active admin $pub" ] &&
  grep -q '^NAME  *KIND  *ROLES  *ORGS  *STATE  *UPDATED  *BY  *PUBLIC_KEY$' <<<"$out" &&
  ok || bad "principal list table: '$row': $out"
expect 0 "^d1 " -- env FUSEBOX_KEY="$T/bob.key" "$CTL" devices --limit 1
expect 70 "FORBIDDEN" -- env FUSEBOX_KEY="$T/bob.key" "$CTL" enroll --device d9 --platform ios
# a viewer of every organisation lists them all (what status points
# at when a breaker is open); it needed the admin role. A viewer of
# one organisation does not.
expect 0 "principal vera added" -- "$CTL" principal add vera --kind operator --orgs '*' --roles viewer --key-out "$T/vera.key"
expect 0 "^acme " -- env FUSEBOX_KEY="$T/vera.key" "$CTL" summary --all-orgs
expect 0 "" -- env FUSEBOX_KEY="$T/vera.key" "$CTL" breaker status --all-orgs
expect 70 "FORBIDDEN.*needs a principal for every organisation" -- env FUSEBOX_KEY="$T/bob.key" "$CTL" summary --all-orgs
# -o alone names the organisation to sum, as for every other command
# (it was refused: "summary needs ORG[,ORG...]")
expect 0 "^acme " -- "$CTL" -o acme summary
# a web login on a daemon without --http is refused (it once printed a
# token nobody could use, exit 0) and makes no session
expect 65 "STATE.*serves no web console: start it with --http" -- "$CTL" web login --note "no console"
out=$("$CTL" -o _auth audit list --action web 2>&1); st=$?
[ "$st" -eq 0 ] && ! grep -q "web.login" <<<"$out" && ok ||
  bad "a refused web login was audited (exit $st): $out"
# fleet check-in health (issue 12): rules, the report, stale listings
expect 0 "no alert rules" -- "$CTL" fleet
expect 0 "1d +1h +0" -- "$CTL" fleet rule set --stale 24h --repeat 60m --note "incident 4"
expect 0 "2d +once" -- "$CTL" fleet rule set --stale 2880
expect 64 "bad --stale '10s'" -- "$CTL" fleet rule set --stale 10s
expect 64 "needs --stale" -- "$CTL" fleet rule set --repeat 1h
expect 64 "--repeat goes with fleet rule set" -- "$CTL" fleet rule remove --stale 1d --repeat 1h
expect 65 "NOT_FOUND.*no fleet rule at 999 minutes" -- "$CTL" fleet rule remove --stale 999m
expect 0 '"rules":\[\{"stale_minutes":1440,"repeat_minutes":60' -- "$CTL" --json fleet
expect 0 "^0 devices without a check-in for 1d or longer" -- "$CTL" devices --stale 1d
expect 0 "" -- "$CTL" fleet rule remove --stale 2d
expect 0 "fleet.rule_set" -- "$CTL" audit list
# options end at "--": the next page's --after goes before it
out=$("$CTL" -o acme2 devices --group sales --limit=2 -- 2>&1)
more=$(sed -n 's/^more: fuseboxctl //p' <<<"$out")
[ "$more" = "-o acme2 devices --group sales --limit=2 --after g2 --" ] && ok ||
  bad "devices with --: more line '$more': $out"
out=$(eval "\"\$CTL\" $more" 2>&1)
grep -q '^g3 ' <<<"$out" && ok || bad "devices with -- (pasted more line): $out"
out=$("$CTL" -o acme audit list --action fleet --limit 1 --after 0 2>&1)
more=$(sed -n 's/^more: fuseboxctl //p' <<<"$out")
case "$more" in
"-o acme audit list --action fleet --limit 1 --after "[0-9]*)
  out=$(eval "\"\$CTL\" $more" 2>&1)
  grep -q "^1 record of acme" <<<"$out" && grep -q "fleet.rule_" <<<"$out" &&
    ok || bad "audit list page 2 (pasted more line): $out" ;;
*) bad "audit list page 1: more line '$more': $out" ;;
esac
# an OS update's applied state: d1 never reported a version
ID=$("$CTL" submit --type os_update --device d1 --payload version=17.6 2>/dev/null)
expect 0 "os_update to 17.6\): 1 devices; 0 report 17.6 .*1 none yet" -- "$CTL" fleet version "$ID"
expect 0 '"target":"17.6","devices":1,"at_target":0' -- "$CTL" --json fleet version "$ID"
expect 64 "fleet version needs one command id" -- "$CTL" fleet version

# submit --wait with no gateway says so (and still times out)
out=$("$CTL" submit --type lock --device d1 --wait 3 2>&1); st=$?
if [ $st -eq 69 ] && grep -q "no gateway is connected" <<<"$out"; then ok
else bad "submit --wait without gateway: exit $st: $out"; fi
# submit --wait with a key that may submit but not read (no viewer
# role): the command stands, and the line says so, so that a script
# does not take the status for a failed submit and send it again
expect 0 "principal oscar added" -- "$CTL" principal add oscar --kind operator --orgs acme --roles operator --key-out "$T/oscar.key"
out=$("$CTL" --key "$T/oscar.key" submit --type query --device d1 --wait 3 2>&1); st=$?
id=$(grep -E '^[0-9]+$' <<<"$out")
if [ $st -eq 70 ] && [ -n "$id" ] &&
  grep -q "FORBIDDEN (28): command $id is submitted (it stands: do not send it again); --wait cannot follow it: principal 'oscar' lacks the viewer role" <<<"$out"
then ok; else bad "submit --wait without the viewer role: exit $st: $out"; fi
expect 0 "^type +query" -- "$CTL" show "$id"

# export: JSON Lines, read back by jansson for the completeness check;
# every line is a JSON object with a kind
expect 0 "export: [0-9]+ lines .*command=3 .*audit=[0-9]+" -- "$CTL" export --output "$T/exp.jsonl"
expect 73 "IO \(18\): cannot create .*nodir/exp.jsonl: No such file" -- "$CTL" export --output "$T/nodir/exp.jsonl"
n=$(grep -c '^{"kind":"\(command\|delivery\|audit\)"' "$T/exp.jsonl")
[ "$n" -eq "$(wc -l < "$T/exp.jsonl")" ] && [ "$n" -gt 1 ] && ok \
  || bad "export lines: $n of $(wc -l < "$T/exp.jsonl")"

# --json (issue 12 item 6): every read-only command prints JSON, one
# object a line, written by jansson, also for a note with a quote, a
# backslash and UTF-8 (decoded strictly here; the engine refuses notes
# that are not UTF-8 or hold control characters)
J='import json,sys
n=0
for l in sys.stdin.buffer.read().decode("utf-8").splitlines():
    if l.strip():
        json.loads(l)
        n += 1
sys.exit(0 if n else 1)'
jexpect() {
  local out st
  out=$("$@" 2>/dev/null); st=$?
  if [ "$st" != 0 ]; then bad "$* -> exit $st: $out"; return; fi
  if python3 -c "$J" <<<"$out" 2>"$T/json.err"; then ok
  else bad "$* -> not JSON Lines ($(tail -1 "$T/json.err")): $out"; fi
}
NOTE=$(printf 'q"uote b\\ack \303\251 </x> end')
expect 0 "" -- "$CTL" breaker trip --reason jtest --note "$NOTE"
# a lock held by that breaker is never expanded: its rollback plan row
# has no delivery state ('-' in the table, null in --json; it said held
# in --json also for a settling lock)
HID=$(FUSEBOX_KEY="$T/db/keys/rules.key" "$CTL" submit --type lock --device d1 \
  --origin automatic --reason jtest 2>/dev/null | grep -oE '[0-9]+' | head -1)
expect 0 "$HID +- +d1 +lock +- " -- "$CTL" rollback --command "$HID"
expect 0 '"device":"d1","type":"lock","state":null,"action":"cancel"' -- "$CTL" --json rollback --command "$HID"
# status says what needs a human first: the open breaker and its hold
expect 0 "breakers_open +[1-9][0-9]* \(fuseboxctl breaker status --all-orgs\)" -- "$CTL" status
expect 0 "commands_held +[1-9][0-9]* \(fuseboxctl held; in an incident roll it back before any reset\)" -- "$CTL" status
expect 0 '"breakers_open":[1-9][0-9]*,"commands_held":[1-9]' -- "$CTL" --json status
# the summary line counts the global breakers too (it said "global
# breakers not counted", and a storm held by one read as 0 held)
expect 0 "tripped or hold commands: [0-9]+ open, [1-9][0-9]* commands held; global breakers: [0-9]+ open, [0-9]+ commands held" -- \
  "$CTL" breaker status --all-orgs
# a refused certificate names the file it came from, not the request field
echo garbage > "$T/bad.pem"
expect 65 "BAD_CERT \(30\): $T/bad.pem: no certificate" -- \
  "$CTL" cert add --name x --file "$T/bad.pem" --reason jtest
for c in status list "show $ID" devices "devices --stale 1d" groups held \
    "limit list" "rate show" "breaker status" "breaker status --all-orgs" \
    orgs "summary acme" "audit list" "audit verify" "cert list" fleet \
    "fleet version $ID" "principal list" "rollback --command $ID" \
    "replay --command $ID" "submit --type query --device d1 --dry-run"; do
  # shellcheck disable=SC2086
  jexpect "$CTL" --json $c
done
jexpect "$CTL" export --output -
# the same as text: no line ends in spaces (a row whose last cells were
# empty was padded to the table's width)
for c in status list "show $ID" devices groups held "limit list" \
    "rate show" "breaker status" "breaker status --all-orgs" orgs \
    "summary acme" "audit list" "cert list" fleet "principal list"; do
  # shellcheck disable=SC2086
  out=$("$CTL" $c 2>&1)
  grep -n ' $' <<<"$out" >"$T/trail" && bad "$c: lines end in spaces: $(cat "$T/trail")" || ok
done
out=$("$CTL" --json breaker status 2>/dev/null)
python3 -c '
import json,sys
o = json.loads(sys.stdin.buffer.read().decode("utf-8"))
n = [b["note"] for b in o["breakers"] if b["reason"] == "jtest"][0]
assert n == "q\"uote b\\ack \u00e9 </x> end", repr(n)
' <<<"$out" && ok || bad "breaker note through --json: $out"
out=$("$CTL" export --output - 2>/dev/null)
python3 -c '
import json,sys
ls = [json.loads(l) for l in sys.stdin.buffer.read().decode("utf-8").splitlines() if l]
a = [l for l in ls if l["kind"] == "audit"]
assert a and all(isinstance(l["params"], dict) for l in a), a[:3]
' <<<"$out" && ok || bad "export audit params are not objects"
expect 0 "" -- "$CTL" breaker reset --reason jtest --discard --note done
# discarded now: a plan selecting it lists it with nothing to do (it had
# no row at all: "selected: 1 command" over an empty table)
expect 0 "$HID +- +d1 +lock +- +nothing +- +discarded before: it reached no device" -- \
  "$CTL" rollback --command "$HID"
# a finished run continued again says so (it printed an empty run of
# the organisation with "incident onset not recorded")
out=$("$CTL" rollback --incident jtest --execute --note "cli test" 2>&1); st=$?
RB=$(sed -n 's/^rollback \([0-9]*\) executed in acme .*/\1/p' <<<"$out")
if [ $st -eq 0 ] && [ -n "$RB" ]; then ok; else bad "incident rollback: exit $st: $out"; fi
expect 0 "^rollback $RB: the run is finished; nothing left to do$" -- \
  "$CTL" rollback --incident jtest --execute --note "cli test" --continue "$RB"
# a later trip of the reason starts a new incident: a rollback that
# finds nothing in it names the trip and window it took (it said only
# "matches no command", read as the storm's incident being empty)
expect 0 "" -- "$CTL" breaker trip --reason jtest --note "cli test: a second trip"
expect 65 "nothing to roll back: the incident of breaker acme/jtest's last trip \((onset|window from) 20[0-9-]+T[0-9:]+\.[0-9]{3}Z\) has no command; earlier ones \(if any\) left: --include-before-onset; older trips: --reason R --since T --until T" -- \
  "$CTL" rollback --incident jtest --execute --note "cli test"
expect 0 "" -- "$CTL" breaker reset --reason jtest --discard --note "cli test: second trip over"

# summary counts the commands settling too (its counts did not add up
# while an automatic lock settled): one of a reason without a breaker,
# under a lock limit it does not reach (the default one of this
# one-device organisation is spent by the operator's lock above)
expect 0 "" -- "$CTL" limit set --type lock --max 100 --share 0
# an hour's settle window: the checks below see it settling however
# slow the machine
expect 0 "" -- "$CTL" breaker config --global --reason settle_seen --settle 3600
FUSEBOX_KEY="$T/db/keys/rules.key" "$CTL" submit --type lock --device d1 \
  --origin automatic --reason settle_seen >"$T/settle.out" 2>&1 ||
  bad "automatic lock to settle: $(cat "$T/settle.out")"
expect 0 "^ORG +COMMANDS +HELD +SETTLING +DISCARDED" -- "$CTL" summary acme
expect 0 "^acme +[0-9]+ +[0-9]+ +1 " -- "$CTL" summary acme
expect 0 '"held":[0-9]+,"settling":1,' -- "$CTL" --json summary acme
# a change of a setting the table has no column for is shown in full
expect 0 "settings of \*/cfgshow: window 600 s, .*; global: 3 organisations .*settle 0 s \(off\); enforcing" -- \
  "$CTL" breaker config --global --reason cfgshow --settle 0
# list narrows by origin, type and state (an operator's locks among a
# storm's held ones were found only by paging through all)
out=$("$CTL" list --origin automatic 2>&1)
if grep -qE '^[0-9]+ .* operator ' <<<"$out" || ! grep -qE '^[0-9]+ .* lock +automatic +discarded ' <<<"$out" ||
   ! grep -qE '^[0-9]+ .* lock +automatic +settling ' <<<"$out"; then
  bad "list --origin automatic: $out"
else ok; fi
expect 0 "^[0-9]+ .* automatic +discarded " -- "$CTL" list --state discarded --type lock
out=$("$CTL" list --state discarded --origin operator 2>&1)
grep -qE '^[0-9]+ ' <<<"$out" && bad "list --state discarded --origin operator: $out" || ok
# a page of one: the cursor goes on after the last one shown
expect 0 "more: .*list --origin automatic --limit 1 --after [0-9]+" -- "$CTL" list --origin automatic --limit 1
# a page that holds the last match: no cursor, though commands that do
# not match come after it (it led to an empty page)
n=$("$CTL" list --state discarded --type lock 2>&1 | grep -cE '^[0-9]+ ')
out=$("$CTL" list --state discarded --type lock --limit "$n" 2>&1)
if [ "$n" -ge 1 ] && [ "$(grep -cE '^[0-9]+ ' <<<"$out")" = "$n" ] && ! grep -q "more:" <<<"$out"; then ok
else bad "list --limit $n of $n matches: $out"; fi
expect 64 "unknown command state 'sleeping'" -- "$CTL" list --state sleeping

# a frozen engine: every retry waits its timeout, then TIMEOUT
kill -STOP "$D"
t0=$(date +%s%N)
expect 69 "TIMEOUT.*3 attempts" -- "$CTL" --timeout 400 --retries 2 status
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# each attempt waited its timeout (at least 3 x 400 ms, less a margin
# for the clock); no upper bound: a loaded machine is slower, and the
# 60 s is a guard against a hang, not a speed limit
[ $ms -ge 1100 ] && [ $ms -lt 60000 ] && ok || bad "3 attempts of 400 ms took $ms ms"
# a change that got no answer may still be carried out: the CLI says so
# (a reset whose daemon died looked as if nothing had happened), and
# not for a read (above)
expect 69 "TIMEOUT.*does not answer; it may have been carried out .*check .* before sending it again" -- \
  "$CTL" --timeout 400 --retries 0 enroll --device frozen-1 --platform ios
expect 69 "TIMEOUT.*does not answer$" -- "$CTL" --timeout 400 --retries 0 list
kill -CONT "$D"
expect 0 "" -- "$CTL" status
# a server key that is not the engine's: the engine hangs up on every
# handshake, which the CLI names (not "does not answer"), and it does
# not retry what cannot pass
"$B/fuseboxd" init --data "$T/other" >/dev/null || bad "init other"
expect 69 "TIMEOUT.*\(1 attempt\): the engine closed the connection during the handshake [0-9]+ times: the server key" -- \
  "$CTL" --server-key "$T/other/keys/server.pub" --timeout 1000 --retries 2 status
kill "$D"; wait "$D"; st=$?; D=
[ $st -eq 0 ] && ok || bad "daemon exit $st after SIGTERM"

# the same over several slices (a command a slice), a dry run: the
# message is fuseboxctl's, from the slices' totals. A one-second
# breaker window, so no earlier command of the reason is listed
"$B/fuseboxd" --data "$T/db" --console "ipc://$T/c.sock" \
  --gateway "ipc://$T/g.sock" --rollback-slice 10 2>"$T/daemon3.log" &
D=$!
expect 0 "" -- "$CTL" breaker config --reason jtest --window 1
sleep 1.1 # the reason's last command is now outside that window
expect 0 "" -- "$CTL" breaker trip --reason jtest --note "cli test: a third trip"
expect 65 "^fuseboxctl: NOT_FOUND \(9\): nothing to roll back: the incident of breaker acme/jtest's last trip \((onset|window from) 20[0-9-]+T[0-9:]+\.[0-9]{3}Z\) has no command; older trips: --reason R --since T --until T$" -- \
  "$CTL" rollback --incident jtest
expect 0 "" -- "$CTL" breaker reset --reason jtest --discard --note "cli test: third trip over"
kill "$D"; wait "$D"; D=

# storage trouble: a commit whose disk writes fail (EIO, the disk not
# full) answers IO, "not recorded", and fuseboxctl exits 75 (retry once
# the cause is fixed), as for DISK_FULL; reads are still served. The
# fault shim fails every fdatasync of the store once $T/arm exists.
if [ -n "${FBX_FAULT_SHIM:-}" ]; then
  LD_PRELOAD="$FBX_FAULT_SHIM" FBX_FAULT_OPS=fdatasync FBX_FAULT_ERRNO=EIO \
    FBX_FAULT_ARM="$T/arm" FBX_FAULT_COUNT=0 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    "$B/fuseboxd" --data "$T/db" --console "ipc://$T/c.sock" \
    --gateway "ipc://$T/g.sock" 2>"$T/daemon2.log" &
  D=$!
  expect 0 "" -- "$CTL" status
  touch "$T/arm"
  expect 75 "IO \(18\): not recorded" -- "$CTL" submit --type query --device d1 --idempotency-key cli-io
  # a generated key is shown on stderr also with --json (the JSON
  # that carries it on success is not printed)
  expect 75 "sending with idempotency key (ctl-[0-9a-f]{24}) \(to send this submit again safely: --idempotency-key \1\)" -- \
    "$CTL" --json submit --type query --device d1
  expect 75 "IO \(18\): not recorded" -- "$CTL" enroll --device d2 --platform ios
  expect 0 "d1" -- "$CTL" devices --limit 5
  kill "$D"; wait "$D"; D=
else
  bad "FBX_FAULT_SHIM is not set (CMake sets it)"
fi

echo "cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
