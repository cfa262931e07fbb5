# Sourced by the bbr benchmarks that need one sample VM (set ADDR and PORT first): installs
# what they need, builds bbr (release), starts an sshd VM at $ADDR:$PORT under a fresh $WORK
# and stops it (by PID) on exit. Sets ROOT, BBR, WORK, VM_PID, KEY, and V (the VM's /var/vcap).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash .ci/install-deps.sh >/dev/null
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
cargo build --release -q -p bbr-cli
BBR="$ROOT/target/release/bbr"
WORK=$(mktemp -d /tmp/bbr-bench.XXXXXX)
chmod 0755 "$WORK"   # sshd reads authorized_keys as the login user
VM_PID=$(bash scripts/start-vm.sh "$WORK/vm" "$ADDR" "$PORT")
trap 'bash scripts/stop-pid.sh "$VM_PID"; rm -rf "$WORK"' EXIT
KEY="$WORK/vm/client_key"
V="$WORK/vm/var-vcap"
