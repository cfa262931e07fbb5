#!/usr/bin/env bash
# Deployment-mode benchmarks: overhead with 50 VMs (or $1) and no-op scripts, then the
# parallel drain of 4 VMs (or $2) x 1 GiB (or $3 MiB) against raw parallel ssh copies. Both
# run behind the director simulator with
# no-op scripts; see crates/bbr-director-sim/src/bin/deployment-bench.rs. Needs root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash .ci/install-deps.sh >/dev/null
cargo build --release -q -p bbr-cli -p bbr-director-sim --bin bbr --bin deployment-bench
"$ROOT/target/release/deployment-bench" "$ROOT/target/release/bbr" "${1:-50}"
"$ROOT/target/release/deployment-bench" "$ROOT/target/release/bbr" drain "${2:-4}" "${3:-1024}"
