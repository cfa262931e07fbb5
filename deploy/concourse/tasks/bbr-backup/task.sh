#!/usr/bin/env bash
# Concourse task: `bbr deployment backup` of one deployment, streamed straight to
# ARTIFACT_PATH (s3://BUCKET/PREFIX): nothing is written, tarred or copied on the worker.
# Params: see task.yml. Runs as `bash -eu task.sh` in the build's working directory.
set -eu

# The bbr binary: bbr-binary/bbr when that input is given, else bbr on the image's PATH.
bbr=bbr
if [ -f bbr-binary/bbr ]; then
  chmod +x bbr-binary/bbr
  bbr=$PWD/bbr-binary/bbr
fi

: "${DEPLOYMENT:?DEPLOYMENT is required}"
: "${ARTIFACT_PATH:?ARTIFACT_PATH is required (e.g. s3://backups/cf)}"
: "${BOSH_ENVIRONMENT:?BOSH_ENVIRONMENT is required}"

args=(backup --artifact-path "$ARTIFACT_PATH")
if [ "${WITH_MANIFEST:-false}" = true ]; then
  args+=(--with-manifest)
fi
if [ -n "${METRICS_FILE:-}" ]; then
  args+=(--metrics-file "$METRICS_FILE")
fi
"$bbr" deployment --deployment "$DEPLOYMENT" "${args[@]}"
