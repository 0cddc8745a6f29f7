#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages fusebox builds and runs with.
# Idempotent: does nothing when they are all present. Uses sudo when not
# root.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev
      protobuf-c-compiler liblmdb-dev lmdb-utils libinih-dev libssl-dev
      libsystemd-dev  # sd_notify for fuseboxd (Type=notify unit)
      libmicrohttpd-dev  # fuseboxd --http: /metrics (FBX_HTTP)
      libjansson-dev  # JSON: the web console's API (issue 12)
      libpq-dev postgresql-15  # the PostgreSQL store backend; its tests
      curl prometheus  # tests: metrics_test scrapes /metrics, promtool
      chromium  # tests: web_test loads the web console headless
      clang libclang-rt-14-dev) # clang + libFuzzer runtime: scripts/fuzz.sh
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
