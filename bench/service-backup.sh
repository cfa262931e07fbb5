#!/usr/bin/env bash
# service-backup benchmark (issue 4): upload one SIZE_MIB file (default 1024) to a local
# SeaweedFS S3 server, timed in the same run, alternating, medians of RUNS (default 3):
#   baseline:  aws s3 cp FILE s3://bench-aws/...       (awscli from the storage tools venv:
#              8 MiB parts, 10 concurrent requests)
#   ours:      manual-backup CONFIG                    (one s3 destination, same server)
# Then peak RSS of manual-backup uploading a RSS_MIB file (default 4096), from /usr/bin/time -v.
# Every uploaded object is compared with the source by size and SHA-256 (read back with aws).
# Needs root. Env: SIZE_MIB, RSS_MIB, RUNS, KEEP=1 keeps the work dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SIZE_MIB=${SIZE_MIB:-1024}
RSS_MIB=${RSS_MIB:-4096}
RUNS=${RUNS:-3}
TOOLS=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
bash .ci/install-storage-deps.sh >/dev/null
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
cargo build --release -q -p service-backup
MANUAL="$ROOT/target/release/manual-backup"
AWS="$TOOLS/venv/bin/aws"

WORK=$(mktemp -d /tmp/sb-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
WEED=$(bash scripts/start-seaweedfs.sh 127.0.0.1 "$PORT" "$WORK/weed")
cleanup() {
  bash scripts/stop-pid.sh "$WEED" || true
  [ "${KEEP:-}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
EP="http://127.0.0.1:$PORT"
aws_() { env -u AWS_CA_BUNDLE AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 "$AWS" --endpoint-url "$EP" "$@"; }
aws_ s3 mb s3://bench-aws >/dev/null

mkfile() { # PATH MIB: incompressible content, fast
  # (openssl dies of SIGPIPE when head has enough: not an error)
  { openssl enc -aes-128-ctr -pass pass:bench -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } \
    | head -c $(( $2 * 1024 * 1024 )) > "$1"
  [ "$(stat -c %s "$1")" -eq $(( $2 * 1024 * 1024 )) ] || { echo "could not write $1" >&2; exit 1; }
}
mkdir -p "$WORK/src"
mkfile "$WORK/src/data.bin" "$SIZE_MIB"
SUM=$(openssl dgst -sha256 -r "$WORK/src/data.bin" | cut -d' ' -f1)
cat > "$WORK/config.yml" <<YML
destinations:
- type: s3
  name: bench
  config:
    endpoint_url: $EP
    region: us-east-1
    bucket_name: bench-sb
    bucket_path: runs
    access_key_id: $AWS_ACCESS_KEY_ID
    secret_access_key: $AWS_SECRET_ACCESS_KEY
    force_path_style: true
source_folder: $WORK/src
cron_schedule: '@daily'
state_dir: $WORK/state
YML

check() { # URL: the object must hash to $SUM
  local got
  got=$(aws_ s3 cp "$1" - | openssl dgst -sha256 -r | cut -d' ' -f1)
  [ "$got" = "$SUM" ] || { echo "MISMATCH for $1: $got != $SUM" >&2; exit 1; }
}
now() { date +%s.%N; }
declare -a T_AWS T_OURS
for i in $(seq 1 "$RUNS"); do
  sync; t0=$(now); aws_ s3 cp --quiet "$WORK/src/data.bin" "s3://bench-aws/run$i/data.bin"; t1=$(now)
  T_AWS+=("$(echo "$t1 - $t0" | bc)")
  sync; t0=$(now); "$MANUAL" "$WORK/config.yml" >"$WORK/manual-$i.log" 2>&1 || { cat "$WORK/manual-$i.log" >&2; exit 1; }; t1=$(now)
  T_OURS+=("$(echo "$t1 - $t0" | bc)")
  echo "run $i: aws s3 cp ${T_AWS[-1]} s, manual-backup ${T_OURS[-1]} s"
done
check "s3://bench-aws/run1/data.bin"
check "s3://bench-sb/runs/$(date +%Y/%m/%d)/data.bin"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
MA=$(median "${T_AWS[@]}"); MO=$(median "${T_OURS[@]}")
echo "== ${SIZE_MIB} MiB to SeaweedFS: aws s3 cp ${MA} s ($(echo "scale=0; $SIZE_MIB / $MA" | bc) MiB/s), manual-backup ${MO} s ($(echo "scale=0; $SIZE_MIB / $MO" | bc) MiB/s), ratio ours/aws = $(echo "scale=2; $MO / $MA" | bc)"

rm -f "$WORK/src/data.bin"
mkfile "$WORK/src/big.bin" "$RSS_MIB"
/usr/bin/time -v "$MANUAL" "$WORK/config.yml" >"$WORK/rss.log" 2>"$WORK/rss.time" || { cat "$WORK/rss.log" "$WORK/rss.time" >&2; exit 1; }
RSS=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/rss.time")
echo "== ${RSS_MIB} MiB upload: manual-backup peak RSS $(( RSS / 1024 )) MiB"
