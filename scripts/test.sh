#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian 12 machine (root),
# then runs the whole suite with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
bash .ci/install-db-deps.sh
bash .ci/install-storage-deps.sh
cargo nextest run --workspace --no-fail-fast "$@"
