#!/usr/bin/env bash
# Concourse task: `bbr backup-cleanup` after a failed backup (the pipeline's on_failure):
# unlocks the jobs and removes /var/vcap/store/bbr-backup on every VM.
# MODE=deployment (DEPLOYMENT, BOSH_*) or MODE=director (DIRECTOR_*). Params: see task.yml.
set -eu

bbr=bbr
if [ -f bbr-binary/bbr ]; then
  chmod +x bbr-binary/bbr
  bbr=$PWD/bbr-binary/bbr
fi

case "${MODE:-deployment}" in
  deployment)
    : "${DEPLOYMENT:?DEPLOYMENT is required}"
    "$bbr" deployment --deployment "$DEPLOYMENT" backup-cleanup
    ;;
  director)
    : "${DIRECTOR_HOST:?DIRECTOR_HOST is required}"
    : "${DIRECTOR_PRIVATE_KEY:?DIRECTOR_PRIVATE_KEY is required (the PEM)}"
    secrets=$(mktemp -d)
    trap 'rm -rf "$secrets"' EXIT
    (umask 077 && printf '%s\n' "$DIRECTOR_PRIVATE_KEY" > "$secrets/key")
    "$bbr" director --host "$DIRECTOR_HOST" --username "${DIRECTOR_USERNAME:-jumpbox}" \
      --private-key-path "$secrets/key" --known-hosts "$secrets/known_hosts" backup-cleanup
    ;;
  *)
    echo "MODE must be deployment or director, not '$MODE'" >&2
    exit 2
    ;;
esac
