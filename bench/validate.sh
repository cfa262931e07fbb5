#!/usr/bin/env bash
# `bbr artifact validate` benchmark (issue 12, "bbr artifact: validate and list").
#
# A local artifact of SIZE_MIB (default 2048) of incompressible data in two tars (two jobs of
# one instance, 4 files each), made with GNU tar and recorded in `metadata` with sha256sum.
# We time, from the same page-cache state on both sides:
#   baseline: openssl dgst -sha256 tar1 tar2     (the tars hashed one after the other)
#   bbr:      bbr artifact validate DIR          (every tar read to its end, several at once,
#                                                 per-file SHA-256, entries and files checked)
# cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before every run; hot: after reading the
# tars once. Medians of RUNS (default 3) and the ratios bbr / baseline (target <= 1.0x).
# Needs root (drop_caches). Builds bbr (release) first.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-2048}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release -q -p bbr-cli
BBR="$ROOT/target/release/bbr"
WORK=$(mktemp -d /tmp/bbr-bench-validate.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ART="$WORK/bench_20240101T000000Z"
mkdir -p "$ART"
per_file=$((SIZE_MIB / 8))
{
  echo "instances:"
  echo "- name: bench"
  echo "  index: \"0\""
  echo "  artifacts:"
} > "$ART/metadata"
for job in 1 2; do
  src="$WORK/src-$job"
  mkdir -p "$src/data"
  for i in 1 2 3 4; do
    openssl rand -out "$src/data/part-$i" $((per_file * 1024 * 1024)) 2>/dev/null
  done
  tar -C "$src" -cf "$ART/bench-0-job$job.tar" .
  {
    echo "  - name: job$job"
    echo "    checksums:"
    (cd "$src" && find . -type f | sort | xargs sha256sum) |
      awk '{print "      " $2 ": " $1}'
  } >> "$ART/metadata"
  rm -rf "$src"
done
TARS=("$ART"/bench-0-job1.tar "$ART"/bench-0-job2.tar)
"$BBR" artifact validate "$ART" > "$WORK/check.log" || { cat "$WORK/check.log"; exit 1; }

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
hot() { cat "${TARS[@]}" > /dev/null; }
declare -A T
run() { # name, prepare, command...
  local name=$1 prepare=$2; shift 2
  local s e
  "$prepare"; s=$(now); "$@" > /dev/null; e=$(now)
  T[$name]+="$(echo "$e - $s" | bc -l) "
}
baseline() { openssl dgst -sha256 "${TARS[@]}"; }
validate() { "$BBR" artifact validate "$ART"; }
for r in $(seq 1 "$RUNS"); do
  run cold_base cold baseline
  run cold_bbr cold validate
  run hot_base hot baseline
  run hot_bbr hot validate
done
m() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
cb=$(m cold_base); cx=$(m cold_bbr); hb=$(m hot_base); hx=$(m hot_bbr)
bytes=$(cat "${TARS[@]}" | wc -c)
mib=$(echo "$bytes / 1048576" | bc -l)
printf 'artifact: %.0f MiB in 2 tars of 4 files, %d CPUs, %d runs, medians\n' "$mib" "$(nproc)" "$RUNS"
printf 'cold  openssl dgst -sha256 (sequential): %6.2fs (%4.0f MiB/s)\n' "$cb" "$(echo "$mib/$cb" | bc -l)"
printf 'cold  bbr artifact validate:             %6.2fs (%4.0f MiB/s)  ratio %.3f\n' \
  "$cx" "$(echo "$mib/$cx" | bc -l)" "$(echo "$cx/$cb" | bc -l)"
printf 'hot   openssl dgst -sha256 (sequential): %6.2fs (%4.0f MiB/s)\n' "$hb" "$(echo "$mib/$hb" | bc -l)"
printf 'hot   bbr artifact validate:             %6.2fs (%4.0f MiB/s)  ratio %.3f\n' \
  "$hx" "$(echo "$mib/$hx" | bc -l)" "$(echo "$hx/$hb" | bc -l)"
