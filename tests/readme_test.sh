#!/usr/bin/env bash
# readme_test.sh: the README's "Using it" block works as it stands, as a
# normal user on a fresh machine: it is cut out of README.md (the block
# after the marker comment) and run by bash with a new, empty HOME and
# no XDG_RUNTIME_DIR, with B pointing at this build's binaries, under a
# timeout. It must exit 0 (submit --wait finished: the simulated gateway
# answered), and the daemon must have exited 0 with its sockets removed.
# Run as a non-root user when the test runs as root (setpriv), so root
# paths would fail as they would for a user.
# Run by CTest (fbx.tests.readme_test).
set -u
SRC=${FBX_SOURCE_DIR:?set FBX_SOURCE_DIR to the source tree}
BIN=${FBX_BIN_DIR:?set FBX_BIN_DIR to the dispatcher directory of a build}
T=$(mktemp -d /tmp/fbx-readme.XXXXXX)
chmod 755 "$T"
fail() { echo "FAIL: $*" >&2; echo "kept $T" >&2; exit 1; }
awk '/<!-- tests\/readme_test.sh runs the next block/ {m=1; next}
     m==1 && /^```(sh|bash)$/ {m=2; next}
     m==2 && /^```$/ {exit}
     m==2 {print}' "$SRC/README.md" > "$T/block.sh"
[ -s "$T/block.sh" ] || fail "no marked block in README.md"
grep -q 'fuseboxd' "$T/block.sh" || fail "the block does not start fuseboxd"
! grep -qE '0\.0\.0\.0|/var/|/run/' "$T/block.sh" || fail "root paths or 0.0.0.0 in the block"
mkdir -p "$T/home"
# the end: wait for the daemon the block stopped, check how it ended
cat "$T/block.sh" - > "$T/run.sh" <<'TAIL'
wait $D; st=$?
echo "readme_test: daemon exit $st"
[ $st -eq 0 ] || exit 90
[ ! -e "$R/console.sock" ] || exit 91
wait $S
TAIL
RUN=(env -i PATH=/usr/bin:/bin HOME="$T/home" USER=readme B="$BIN" \
  bash -e "$T/run.sh")
AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  if "${AS_NOBODY[@]}" "$BIN/fuseboxd" --version >/dev/null 2>&1; then
    chown -R 65534:65534 "$T/home"
    RUN=("${AS_NOBODY[@]}" "${RUN[@]}")
  else
    echo "note: nobody cannot run $BIN/fuseboxd; running as root"
  fi
fi
cd "$T/home"
timeout 90 "${RUN[@]}" > "$T/out.txt" 2>&1; st=$?
cat "$T/out.txt"
[ $st -eq 0 ] || fail "the README block exited $st"
grep -qE '^succeeded +1$' "$T/out.txt" ||
  fail "submit --wait printed no succeeded count"
grep -q "readme_test: daemon exit 0" "$T/out.txt" || fail "daemon did not exit 0"
rm -rf "$T"
echo "readme_test: the README block ran as it stands"
