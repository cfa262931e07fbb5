#!/usr/bin/env bash
# The demo, in two parts. One: a sample "VM" (OpenSSH sshd in its own mount namespace
# with its own /var/vcap) running a real Redis whose release-style bbr scripts are
# installed under /var/vcap/jobs/redis/bin/bbr; `bbr director` backs it up, the data is
# damaged, bbr restores it, and the data is shown back. Two: a 3-VM deployment behind the
# BOSH director simulator, each VM running Redis; `bbr deployment` does the same.
# Needs root (it starts sshd and uses namespaces).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash .ci/install-deps.sh
echo "== building bbr (release)"
cargo build --release -q -p bbr-cli
BBR="$ROOT/target/release/bbr"

WORK=$(mktemp -d /tmp/bbr-demo.XXXXXX)
chmod 0755 "$WORK"   # sshd reads authorized_keys as the login user
ADDR=127.0.0.77
PORT=2222
VM="$WORK/vm"
cleanup() {
  set +e
  [ -n "${VM_PID:-}" ] && ssh_vm 'sudo -n sh -c "redis-cli -p 6390 SHUTDOWN NOSAVE"' >/dev/null 2>&1
  [ -n "${VM_PID:-}" ] && bash scripts/stop-pid.sh "$VM_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "== starting a VM (sshd on $ADDR:$PORT with a private /var/vcap)"
VM_PID=$(bash scripts/start-vm.sh "$VM" "$ADDR" "$PORT")
KEY="$VM/client_key"
ssh_vm() {
  ssh -q -i "$KEY" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
      -o UserKnownHostsFile=/dev/null vcap@"$ADDR" "$@"
}
JOB="$VM/var-vcap/jobs/redis/bin"
mkdir -p "$JOB/bbr"
cp demo/redis-job/ctl "$JOB/ctl"
for s in metadata pre-backup-lock backup post-backup-unlock pre-restore-lock restore post-restore-unlock; do
  cp "demo/redis-job/$s" "$JOB/bbr/$s"
done
chmod 0755 "$JOB/ctl" "$JOB"/bbr/*
ssh_vm 'sudo -n /var/vcap/jobs/redis/bin/ctl start'
echo "== writing data into Redis on the VM"
ssh_vm 'redis-cli -p 6390 SET greeting "hello from before the backup" >/dev/null;
        for i in $(seq 1 100); do redis-cli -p 6390 SET "key:$i" "value-$i" >/dev/null; done;
        echo "greeting = $(redis-cli -p 6390 GET greeting), keys = $(redis-cli -p 6390 DBSIZE)"'

KNOWN="$WORK/known_hosts"
ARTIFACTS="$WORK/artifacts"; mkdir -p "$ARTIFACTS"
echo "== bbr director backup"
"$BBR" director --host "$ADDR:$PORT" --username vcap --private-key-path "$KEY" \
  --known-hosts "$KNOWN" backup --artifact-path "$ARTIFACTS"
ART=$(ls -d "$ARTIFACTS"/*/)
echo "== the artifact: $ART"
ls -l "$ART"; cat "$ART/metadata"

echo "== damaging the data"
ssh_vm 'redis-cli -p 6390 FLUSHALL >/dev/null; redis-cli -p 6390 SET greeting "oops" >/dev/null;
        echo "greeting = $(redis-cli -p 6390 GET greeting), keys = $(redis-cli -p 6390 DBSIZE)"'

echo "== bbr director restore"
"$BBR" director --host "$ADDR:$PORT" --username vcap --private-key-path "$KEY" \
  --known-hosts "$KNOWN" restore --artifact-path "$ART"

echo "== the data is back"
RESULT=$(ssh_vm 'echo "greeting = $(redis-cli -p 6390 GET greeting), keys = $(redis-cli -p 6390 DBSIZE)"')
echo "$RESULT"
echo "== what the release scripts recorded on the VM"
cat "$VM/var-vcap/sys/log/redis/bbr.log"
if [ "$RESULT" = "greeting = hello from before the backup, keys = 101" ]; then
  echo "DEMO OK: backed up, damaged, restored."
else
  echo "DEMO FAILED: the restored data is not what was backed up" >&2
  exit 1
fi

echo
echo "== part two: bbr deployment, through a (simulated) BOSH director, 3 VMs"
cargo build --release -q -p bbr-director-sim --bin deployment-demo
"$ROOT/target/release/deployment-demo" "$BBR" "$ROOT/demo/redis-job"
