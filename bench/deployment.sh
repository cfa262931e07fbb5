#!/usr/bin/env bash
# Deployment-mode overhead benchmark: 50 VMs (or $1) behind the director simulator with
# no-op scripts; see crates/bbr-director-sim/src/bin/deployment-bench.rs. Needs root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash .ci/install-deps.sh >/dev/null
cargo build --release -q -p bbr-cli -p bbr-director-sim --bin bbr --bin deployment-bench
exec "$ROOT/target/release/deployment-bench" "$ROOT/target/release/bbr" "${1:-50}"
