#!/usr/bin/env bash
# install_test.sh: `cmake --install` into a temporary prefix lays out the
# binaries, man pages, unit, sysusers file and example configuration; the
# installed daemon starts with the example configuration; and the man
# pages name every option the --help texts list (so they cannot drift).
# Run by CTest (fbx.tests.install_test) with FBX_BUILD_DIR and
# FBX_SOURCE_DIR set.
set -u
BUILD=${FBX_BUILD_DIR:?set FBX_BUILD_DIR to a configured build tree}
SRC=${FBX_SOURCE_DIR:?set FBX_SOURCE_DIR to the source tree}
T=$(mktemp -d /tmp/fbx-install.XXXXXX)
P=$T/prefix
pass=0 fail=0 D=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
cleanup() {
  [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null
  if [ "$fail" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT

if ! cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then
  bad "cmake --install failed: $(tail -5 "$T/install.log")"; exit 1
fi
for f in sbin/fuseboxd bin/fuseboxctl bin/fusebox-devsim; do
  [ -x "$P/$f" ] && ok || bad "missing executable $f"
done
for f in share/man/man8/fuseboxd.8 share/man/man1/fuseboxctl.1 \
         share/man/man1/fusebox-devsim.1 lib/systemd/system/fuseboxd.service \
         lib/sysusers.d/fusebox.conf share/doc/fusebox/fusebox.ini.example; do
  [ -s "$P/$f" ] && ok || bad "missing file $f"
done
# nothing else: no static libraries, tests or headers
extra=$(cd "$P" && find . -type f | grep -vE '^\./(s?bin|share/man|share/doc/fusebox|lib/systemd|lib/sysusers\.d)/' )
[ -z "$extra" ] && ok || bad "unexpected files installed: $extra"
# the unit names the prefix of this install (--prefix), not the one the
# build was configured with (it once kept /usr/local)
grep -qxF "ExecStart=$P/sbin/fuseboxd --config /etc/fusebox/fuseboxd.ini" \
  "$P/lib/systemd/system/fuseboxd.service" && ok ||
  bad "unit ExecStart: $(grep ExecStart "$P/lib/systemd/system/fuseboxd.service")"
grep -qF "install -D -m 0644 $P/share/doc/fusebox/fusebox.ini.example" \
  "$P/lib/systemd/system/fuseboxd.service" && ok || bad "unit example config path"
"$P/sbin/fuseboxd" --version | grep -q "^fuseboxd [0-9]" && ok || bad "fuseboxd --version"
"$P/bin/fuseboxctl" -V | grep -q "^fuseboxctl [0-9]" && ok || bad "fuseboxctl -V"

# the example configuration is accepted (paths overridden by flags)
if "$P/sbin/fuseboxd" init --data "$T/db" >"$T/init.log" 2>&1; then ok
else bad "fuseboxd init: $(cat "$T/init.log")"; fi
export FUSEBOX_KEY="$T/db/keys/admin.key" FUSEBOX_SERVER_KEY="$T/db/keys/server.pub"
"$P/sbin/fuseboxd" -c "$P/share/doc/fusebox/fusebox.ini.example" \
  --data "$T/db" --console "ipc://$T/c.sock" --gateway "ipc://$T/g.sock" \
  2>"$T/d.log" &
D=$!
if "$P/bin/fuseboxctl" -e "ipc://$T/c.sock" status >/dev/null; then ok
else bad "daemon with the example config: $(cat "$T/d.log")"; fi
kill "$D"; wait "$D"; st=$?; D=
[ $st -eq 0 ] && ok || bad "daemon exit $st"

# man pages render without warnings
if command -v man >/dev/null; then
  for m in "$P"/share/man/man*/*; do
    w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
    [ -z "$w" ] && ok || bad "man $m: $w"
  done
fi

# every option of every --help text is in the man page
opts() { grep -oE -- '--[a-z][a-z-]*[a-z]' | sort -u; }
mantext() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"; }
check_opts() { # MANPAGE HELP-TEXT...
  local page=$1; shift
  local text; text=$(mantext "$page")
  for o in $(printf '%s\n' "$@" | opts); do
    grep -q -- "$o" <<<"$text" && ok || bad "$(basename "$page") lacks $o"
  done
}
check_opts "$P/share/man/man8/fuseboxd.8" "$("$P/sbin/fuseboxd" --help)" \
  "$("$P/sbin/fuseboxd" init --help)"
check_opts "$P/share/man/man1/fusebox-devsim.1" "$("$P/bin/fusebox-devsim" --help)"
helps=$("$P/bin/fuseboxctl" --help)
for c in $("$P/bin/fuseboxctl" --help | awk '/^Commands:/{on=1;next} on && /^  [a-z]+ /{print $1}'); do
  helps+=$'\n'$("$P/bin/fuseboxctl" "$c" --help)
  mantext "$P/share/man/man1/fuseboxctl.1" | grep -q "^\.SS $c" && ok ||
    bad "fuseboxctl.1 has no section for $c"
done
check_opts "$P/share/man/man1/fuseboxctl.1" "$helps"

echo "install_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
