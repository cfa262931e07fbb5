#!/usr/bin/env bash
# `bbr artifact prune` over an object-store prefix (issue: retention), against the raw
# baseline `aws s3 rm --recursive` of the same objects, on a local SeaweedFS.
#
# COUNT artifacts (default 1000) of one deployment, each `<name>_<timestamp>/` holding a tar,
# `metadata` and `manifest.yml` (small objects: the cost is requests, not bytes), are
# uploaded with `aws s3 sync`; then, alternating, RUNS times (default 3):
#   baseline: aws s3 rm --recursive s3://bench/<all but the newest artifact's prefixes>
#             (one `rm --recursive` of a prefix holding exactly the objects prune deletes)
#   bbr:      bbr artifact prune s3://bench/p --keep-last 1
# with the prefix re-uploaded before each. Prints the medians and the ratio bbr/baseline
# (target <= 1.0), and checks after each bbr run that exactly the newest artifact is left.
#
# Needs root. Env: COUNT, RUNS, BBR (a built bbr; else it is built, release).
set -euo pipefail
COUNT=${COUNT:-1000}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
bash .ci/install-storage-deps.sh >/dev/null
if [ -z "${BBR:-}" ]; then
  cargo build --release -q -p bbr-cli --bin bbr
  BBR="${CARGO_TARGET_DIR:-$ROOT/target}/release/bbr"
fi
AWS="$TOOLS/venv/bin/aws"
S3_ADDR=127.0.0.97
WORK=$(mktemp -d /tmp/bbr-bench-prune.XXXXXX)
PIDS=()
cleanup() {
  set +e
  [ ${#PIDS[@]} -eq 0 ] || bash scripts/stop-pid.sh "${PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
S3_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('$S3_ADDR', 0)); print(s.getsockname()[1])")
PIDS+=("$(bash scripts/start-seaweedfs.sh "$S3_ADDR" "$S3_PORT" "$WORK/weed")")
export AWS_ENDPOINT_URL="http://$S3_ADDR:$S3_PORT"
unset AWS_CA_BUNDLE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
aws_() { AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 "$AWS" "$@"; }
aws_ s3 mb s3://bench >/dev/null

# COUNT artifacts, one per hour going back from 2026-01-01 (the newest is kept).
TREE="$WORK/tree"; mkdir -p "$TREE"
python3 - "$TREE" "$COUNT" <<'PY'
import datetime, os, sys, tarfile, io
tree, count = sys.argv[1], int(sys.argv[2])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    data = b"dump\n"
    info = tarfile.TarInfo("./dump"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
tar = buf.getvalue()
meta = ("instances:\n- name: redis\n  index: \"0\"\n  artifacts:\n  - name: redis\n    checksums:\n"
        "      ./dump: 8e5ee1e8d0c0d4b38b9e3c14e5a4fb4e4b1aca4c5b5c6e88b8a8d7d3a3f5c1d0\n"
        "custom_artifacts: []\nbackup_activity:\n  start_time: 2026/01/01 00:00:00 UTC\n"
        "  finish_time: 2026/01/01 00:00:01 UTC\n")
start = datetime.datetime(2026, 1, 1)
for i in range(count):
    t = start - datetime.timedelta(hours=i)
    d = os.path.join(tree, "dep_" + t.strftime("%Y%m%dT%H%M%SZ"))
    os.mkdir(d)
    open(os.path.join(d, "redis-0-redis.tar"), "wb").write(tar)
    open(os.path.join(d, "metadata"), "w").write(meta)
    open(os.path.join(d, "manifest.yml"), "w").write("name: dep\n")
PY
NEWEST=dep_20260101T000000Z
upload() { aws_ s3 sync --quiet "$TREE" s3://bench/p/; }
objects() { aws_ s3 ls --recursive s3://bench/p/ | wc -l; }
now() { date +%s.%N; }

base=(); ours=()
for r in $(seq 1 "$RUNS"); do
  # baseline: the objects prune deletes, i.e. everything but the newest artifact, removed
  # with one recursive rm of a prefix that holds exactly those (the tree without the newest).
  aws_ s3 sync --quiet --exclude "$NEWEST/*" "$TREE" s3://bench/b/
  t0=$(now); aws_ s3 rm --quiet --recursive s3://bench/b/; t1=$(now)
  base+=("$(python3 -c "print($t1 - $t0)")")

  upload
  t0=$(now); "$BBR" artifact prune s3://bench/p --keep-last 1 > "$WORK/prune.out"; t1=$(now)
  ours+=("$(python3 -c "print($t1 - $t0)")")
  # What is left, object by object (SeaweedFS keeps emptied "directories" as prefixes, so a
  # delimited listing would still show them; S3 has no such thing).
  left=$(aws_ s3 ls --recursive s3://bench/p/ | awk '{print $4}' | sort)
  want=$(printf 'p/%s/manifest.yml\np/%s/metadata\np/%s/redis-0-redis.tar' "$NEWEST" "$NEWEST" "$NEWEST")
  if [ "$left" != "$want" ]; then
    echo "prune left the wrong objects: $(echo "$left" | head -5) ..." >&2
    tail -3 "$WORK/prune.out" >&2; exit 1
  fi
  aws_ s3 rm --quiet --recursive s3://bench/p/
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
B=$(median "${base[@]}"); O=$(median "${ours[@]}")
printf 'prune %d artifacts (%d objects) on SeaweedFS, medians of %d\n' "$COUNT" $((COUNT * 3)) "$RUNS"
printf 'aws s3 rm --recursive (%d objects): %6.2fs\n' $(((COUNT - 1) * 3)) "$B"
printf 'bbr artifact prune --keep-last 1:   %6.2fs   ratio %.3f (target <= 1.0)\n' "$O" \
  "$(python3 -c "print($O / $B)")"
echo "every run (s): aws=[${base[*]}] bbr=[${ours[*]}]"
