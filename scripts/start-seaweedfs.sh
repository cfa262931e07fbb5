#!/usr/bin/env bash
# Start SeaweedFS ("weed mini": master, volume, filer and S3 in one process) with its S3 API
# on ADDR:PORT and its internal services on PORT+1..PORT+9 (and PORT+10004 for admin gRPC),
# all bound to ADDR. Waits until a signed S3 request succeeds, then prints the PID.
# Stop: scripts/stop-pid.sh PID
#
# usage: start-seaweedfs.sh ADDR PORT DATADIR
# env:   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY  the credentials it accepts (required)
#        BBR_STORAGE_TOOLS  where .ci/install-storage-deps.sh put weed and aws (/opt/bbr-storage-tools)
set -euo pipefail
ADDR=${1:?addr}; P=${2:?port}; DATA=${3:?datadir}
TOOLS=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
mkdir -p "$DATA"
LOG="$DATA.log"
setsid "$TOOLS/venv/bin/weed" mini -dir="$DATA" -ip="$ADDR" -ip.bind="$ADDR" \
  -s3.port="$P" -master.port=$((P+1)) -volume.port=$((P+2)) -filer.port=$((P+3)) \
  -admin.port=$((P+4)) -master.port.grpc=$((P+5)) -volume.port.grpc=$((P+6)) \
  -filer.port.grpc=$((P+7)) -s3.port.grpc=$((P+9)) -s3.port.iceberg=0 -s3.port.lance=0 \
  -webdav=false -admin.ui=false </dev/null >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  env -u AWS_CA_BUNDLE AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 \
    "$TOOLS/venv/bin/aws" --endpoint-url "http://$ADDR:$P" s3 ls >/dev/null 2>&1 && { echo "$PID"; exit 0; }
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
echo "start-seaweedfs.sh: S3 on $ADDR:$P did not answer; log: $LOG" >&2
kill "$PID" 2>/dev/null; exit 1
