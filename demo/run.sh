#!/usr/bin/env bash
# The demo, in two parts. One: a sample "VM" (OpenSSH sshd in its own mount namespace
# with its own /var/vcap) running a real Redis whose release-style bbr scripts are
# installed under /var/vcap/jobs/redis/bin/bbr; `bbr director` backs it up, the data is
# damaged, bbr restores it, and the data is shown back. Two: a 3-VM deployment behind the
# BOSH director simulator, each VM running Redis; `bbr deployment` does the same. Three:
# service-backup co-located with the part-one Redis: `manual-backup` prepares a Redis dump
# and uploads it to a real S3 server (SeaweedFS) and over SCP to the VM, then the daemon
# makes one scheduled run and is stopped with SIGTERM; the dump is read back with the aws CLI.
# Four: `bbr director` backs the part-one Redis up straight into an S3 bucket (SeaweedFS),
# lists and validates it there, and restores the damaged data from it.
# Needs root (it starts sshd and uses namespaces).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
echo "== installing what the demo needs (sshd, redis; SeaweedFS and the aws CLI for part three)"
bash .ci/install-deps.sh
bash .ci/install-storage-deps.sh
# Everything the three parts run is built here, up front, so no later step falls silent
# while it compiles. A first build takes a few minutes on two cores; cargo shows its progress.
echo "== building bbr, the director simulator's demo driver and service-backup (release)"
cargo build --release -p bbr-cli -p service-backup -p bbr-director-sim \
  --bin bbr --bin service-backup --bin manual-backup --bin deployment-demo
BBR="$ROOT/target/release/bbr"

WORK=$(mktemp -d /tmp/bbr-demo.XXXXXX)
chmod 0755 "$WORK"   # sshd reads authorized_keys as the login user
ADDR=127.0.0.77
PORT=2222
VM="$WORK/vm"
cleanup() {
  set +e
  [ -n "${DAEMON_PID:-}" ] && kill "$DAEMON_PID" 2>/dev/null
  [ -n "${WEED_PID:-}" ] && bash scripts/stop-pid.sh "$WEED_PID"
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
"$ROOT/target/release/deployment-demo" "$BBR" "$ROOT/demo/redis-job"

echo
echo "== part three: service-backup, co-located with the part-one Redis"
TOOLS=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
S3_PORT=28440
export AWS_ACCESS_KEY_ID=demo-key AWS_SECRET_ACCESS_KEY=demo-secret-key
WEED_PID=$(bash scripts/start-seaweedfs.sh 127.0.0.1 $S3_PORT "$WORK/weed")
aws_() { env -u AWS_CA_BUNDLE AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 \
  "$TOOLS/venv/bin/aws" --endpoint-url "http://127.0.0.1:$S3_PORT" "$@"; }
echo "== S3 (SeaweedFS) on 127.0.0.1:$S3_PORT"

SB_SRC="$WORK/sb-source"; mkdir -p "$SB_SRC"
ssh_vm 'sudo -n mkdir -p /var/vcap/store/service-backups && sudo -n chown vcap /var/vcap/store/service-backups'
# The prepare step a service author writes: dump Redis into the source folder.
cat > "$WORK/sb-prepare" <<PREP
#!/bin/sh
set -e
ssh -q -i "$KEY" -p $PORT -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  vcap@$ADDR 'redis-cli -p 6390 SAVE >/dev/null'
cp "$VM/var-vcap/store/redis/dump.rdb" "$SB_SRC/redis-dump.rdb"
echo "dumped \$(wc -c < "$SB_SRC/redis-dump.rdb") bytes of Redis data"
PREP
chmod 0755 "$WORK/sb-prepare"
{
  echo "destinations:"
  echo "- type: s3"
  echo "  name: seaweedfs"
  echo "  config: {endpoint_url: 'http://127.0.0.1:$S3_PORT', region: us-east-1, bucket_name: demo-backups, bucket_path: redis, access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: $AWS_SECRET_ACCESS_KEY}"
  echo "- type: scp"
  echo "  name: vm"
  echo "  config:"
  echo "    server: $ADDR"
  echo "    port: $PORT"
  echo "    user: vcap"
  echo "    destination: /var/vcap/store/service-backups"
  echo "    key: |"
  sed 's/^/      /' "$KEY"
  echo "source_folder: $SB_SRC"
  echo "source_executable: $WORK/sb-prepare"
  echo "cron_schedule: '@every 2s'"
  echo "deployment_name: demo"
  echo "add_deployment_name_to_backup_path: true"
  echo "exit_if_in_progress: true"
  echo "state_dir: $WORK/sb-state"
} > "$WORK/backup.yml"

echo "== manual-backup (lager JSON, legacy format)"
"$ROOT/target/release/manual-backup" "$WORK/backup.yml" | tee "$WORK/manual.log"
TODAY=$(date +%Y/%m/%d)
echo "== what the S3 server holds (listed with the aws CLI)"
aws_ s3 ls --recursive s3://demo-backups/
echo "== what the VM received over SCP"
ssh_vm "ls -l /var/vcap/store/service-backups/demo/$TODAY"
WANT=$(openssl dgst -sha256 -r "$SB_SRC/redis-dump.rdb" | cut -d' ' -f1)
GOT_S3=$(aws_ s3 cp "s3://demo-backups/redis/demo/$TODAY/redis-dump.rdb" - | openssl dgst -sha256 -r | cut -d' ' -f1)
GOT_VM=$(openssl dgst -sha256 -r "$VM/var-vcap/store/service-backups/demo/$TODAY/redis-dump.rdb" | cut -d' ' -f1)

echo "== the daemon: one scheduled run (@every 2s), then SIGTERM"
"$ROOT/target/release/service-backup" "$WORK/backup.yml" > "$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 300); do grep -q 'Upload backup completed' "$WORK/daemon.log" && break; sleep 0.1; done
kill -TERM "$DAEMON_PID"; set +e; wait "$DAEMON_PID"; DAEMON_RC=$?; set -e; DAEMON_PID=
cat "$WORK/daemon.log"
echo "(service-backup exited $DAEMON_RC after SIGTERM)"
if [ "$WANT" = "$GOT_S3" ] && [ "$WANT" = "$GOT_VM" ] && grep -q 'Upload backup completed successfully' "$WORK/daemon.log" \
   && grep -q 'All backup processes terminated. Exiting' "$WORK/daemon.log"; then
  echo "DEMO OK: service-backup uploaded the Redis dump to S3 and over SCP, byte for byte ($WANT)."
else
  echo "DEMO FAILED: service-backup part (sha256 want $WANT, s3 $GOT_S3, vm $GOT_VM)" >&2
  exit 1
fi

echo
echo "== part four: bbr director straight to and from S3 (no artifact on this machine's disk)"
aws_ s3 mb s3://demo-artifacts >/dev/null
S3_ENV=(env AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_REGION=us-east-1)
URL=s3://demo-artifacts/redis
echo "== bbr director backup --artifact-path $URL"
"${S3_ENV[@]}" "$BBR" director --host "$ADDR:$PORT" --username vcap --private-key-path "$KEY" \
  --known-hosts "$KNOWN" backup --artifact-path "$URL"
echo "== bbr artifact list $URL"
"${S3_ENV[@]}" "$BBR" artifact list "$URL"
STORED="$URL/$(aws_ s3 ls "$URL/" | awk '/PRE/ {print $2}' | tr -d / | head -1)"
echo "== what the bucket holds (listed with the aws CLI)"
aws_ s3 ls --recursive s3://demo-artifacts/
echo "== damaging the data"
ssh_vm 'redis-cli -p 6390 FLUSHALL >/dev/null; redis-cli -p 6390 SET greeting "oops again" >/dev/null'
echo "== bbr director validate --artifact-path $STORED (nothing is locked or run on the VM)"
"${S3_ENV[@]}" "$BBR" director --host "$ADDR:$PORT" --username vcap --private-key-path "$KEY" \
  --known-hosts "$KNOWN" validate --artifact-path "$STORED"
echo "== bbr director restore --artifact-path $STORED"
"${S3_ENV[@]}" "$BBR" director --host "$ADDR:$PORT" --username vcap --private-key-path "$KEY" \
  --known-hosts "$KNOWN" restore --artifact-path "$STORED"
RESULT=$(ssh_vm 'echo "greeting = $(redis-cli -p 6390 GET greeting), keys = $(redis-cli -p 6390 DBSIZE)"')
echo "$RESULT"
if [ "$RESULT" = "greeting = hello from before the backup, keys = 101" ]; then
  echo "DEMO OK: backed up to S3, validated there, restored from it."
else
  echo "DEMO FAILED: the data restored from S3 is not what was backed up" >&2
  exit 1
fi
