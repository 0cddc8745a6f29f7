#!/usr/bin/env bash
# unit_test.sh: `systemd-analyze verify` accepts the fuseboxd unit as
# its template fills in at install (here ExecStart pointed at the built binary, the
# man pages of Documentation= found in the source tree). Skipped (exit 77)
# without systemd-analyze. Run by CTest (fbx.tests.unit_test).
set -u
BUILD=${FBX_BUILD_DIR:?set FBX_BUILD_DIR to a configured build tree}
SRC=${FBX_SOURCE_DIR:?set FBX_SOURCE_DIR to the source tree}
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi
T=$(mktemp -d /tmp/fbx-unit.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/man/man1" "$T/man/man8"
cp "$SRC"/dispatcher/man/*.1 "$T/man/man1/"
cp "$SRC"/dispatcher/man/*.8 "$T/man/man8/"
sed -e "s|@FBX_BINDIR@|$BUILD/dispatcher|g" \
  -e "s|@FBX_EXAMPLE_CONFIG@|$SRC/dispatcher/fusebox.ini.example|g" \
  "$SRC/dispatcher/systemd/fuseboxd.service.in" > "$T/fuseboxd.service"
grep -q "@FBX_" "$T/fuseboxd.service" && { echo "FAIL: a placeholder left: $(grep @FBX_ "$T/fuseboxd.service")"; exit 1; }
grep -q "^Type=notify$" "$T/fuseboxd.service" || { echo "FAIL: not Type=notify"; exit 1; }
for k in NoNewPrivileges=yes ProtectSystem=strict StateDirectory=fusebox \
         RuntimeDirectory=fusebox User=fusebox WatchdogSec=; do
  grep -q "^$k" "$T/fuseboxd.service" || { echo "FAIL: unit lacks $k"; exit 1; }
done
if ! out=$(MANPATH="$T/man" systemd-analyze verify "$T/fuseboxd.service" 2>&1) ||
   [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify: $out"; exit 1
fi
echo "unit_test: systemd-analyze verify accepts fuseboxd.service"
