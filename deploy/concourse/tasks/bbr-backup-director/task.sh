#!/usr/bin/env bash
# Concourse task: `bbr director backup` of the BOSH director, streamed straight to
# ARTIFACT_PATH. DIRECTOR_PRIVATE_KEY is the PEM itself (written to a 0600 temporary file).
# Params: see task.yml. Runs as `bash -eu task.sh` in the build's working directory.
set -eu

bbr=bbr
if [ -f bbr-binary/bbr ]; then
  chmod +x bbr-binary/bbr
  bbr=$PWD/bbr-binary/bbr
fi

: "${DIRECTOR_HOST:?DIRECTOR_HOST is required}"
: "${DIRECTOR_PRIVATE_KEY:?DIRECTOR_PRIVATE_KEY is required (the PEM)}"
: "${ARTIFACT_PATH:?ARTIFACT_PATH is required (e.g. s3://backups/director)}"

secrets=$(mktemp -d)
trap 'rm -rf "$secrets"' EXIT
(umask 077 && printf '%s\n' "$DIRECTOR_PRIVATE_KEY" > "$secrets/key")

args=(backup --artifact-path "$ARTIFACT_PATH")
if [ -n "${METRICS_FILE:-}" ]; then
  args+=(--metrics-file "$METRICS_FILE")
fi
# A fresh known_hosts each build: the director's key is recorded with a warning.
"$bbr" director --host "$DIRECTOR_HOST" --username "${DIRECTOR_USERNAME:-jumpbox}" \
  --private-key-path "$secrets/key" --known-hosts "$secrets/known_hosts" "${args[@]}"
