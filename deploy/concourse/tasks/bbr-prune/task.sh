#!/usr/bin/env bash
# Concourse task: `bbr artifact prune` of ARTIFACT_PATH after a successful backup. KEEP holds
# the retention flags (restic forget semantics), e.g. "--keep-daily 7 --keep-weekly 4"; an
# empty KEEP is refused here (bbr would delete nothing anyway). Params: see task.yml.
set -eu

bbr=bbr
if [ -f bbr-binary/bbr ]; then
  chmod +x bbr-binary/bbr
  bbr=$PWD/bbr-binary/bbr
fi

: "${ARTIFACT_PATH:?ARTIFACT_PATH is required (e.g. s3://backups/cf)}"
: "${KEEP:?KEEP is required (e.g. --keep-daily 7 --keep-weekly 4)}"

args=(artifact prune "$ARTIFACT_PATH")
if [ -n "${DEPLOYMENT:-}" ]; then
  args+=(--deployment "$DEPLOYMENT")
fi
# KEEP is a list of flags: split it on purpose.
# shellcheck disable=SC2206
args+=($KEEP)
if [ "${DRY_RUN:-false}" = true ]; then
  args+=(--dry-run)
fi
if [ -n "${METRICS_FILE:-}" ]; then
  args+=(--metrics-file "$METRICS_FILE")
fi
"$bbr" "${args[@]}"
