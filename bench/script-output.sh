#!/usr/bin/env bash
# Script output benchmark (issue 10, item 4): bbr's peak RSS while a backup script writes
# 1 GiB to stdout (1 KiB lines), through the root runner and through one sudo per command
# (BBR_SUDO_EACH_COMMAND=true), without and with --debug (which logs every line: the log goes
# through `wc` so that it is counted, not kept). bbr must keep only the last 64 KiB of the
# output: the target is a peak RSS under 64 MiB in every case. Needs root. SIZE_MIB overrides.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
ADDR=127.0.0.89; PORT=2298
source "$(dirname "$0")/one-vm.sh"
mkdir -p "$V/jobs/noisy/bin/bbr"
cat > "$V/jobs/noisy/bin/bbr/backup" <<S
#!/bin/sh
yes "\$(printf '%01023d' 0 | tr 0 x)" | head -c $((SIZE_MIB * 1024 * 1024))
echo small > "\$BBR_ARTIFACT_DIRECTORY/small"
S
chmod 0755 "$V/jobs/noisy/bin/bbr/backup"
OUT="$WORK/out"; mkdir -p "$OUT"
# one case: name, extra bbr flags (before the command), BBR_SUDO_EACH_COMMAND value
case_run() {
  local name=$1 flags=$2 each=$3 s e lines
  rm -rf "$OUT/a"; mkdir -p "$OUT/a"
  s=$(date +%s.%N)
  # shellcheck disable=SC2086
  lines=$(BBR_SUDO_EACH_COMMAND=$each /usr/bin/time -f %M -o "$OUT/rss-$name" "$BBR" director \
    --host "$ADDR:$PORT" -u vcap --key "$KEY" --known-hosts "$WORK/kh" $flags backup -a "$OUT/a" | wc -l)
  e=$(date +%s.%N)
  ls "$OUT"/a/*/noisy-0-noisy.tar >/dev/null 2>&1 || ls "$OUT"/a/*/*.tar >/dev/null
  printf '%-22s peak RSS %6d KiB  %6.1fs  %8d log lines\n' "$name" "$(cat "$OUT/rss-$name")" \
    "$(echo "$e - $s" | bc -l)" "$lines"
}
printf 'backup script writing %d MiB to stdout in 1 KiB lines\n' "$SIZE_MIB"
case_run runner "" false
case_run runner-debug "--debug" false
case_run sudo-each "" true
case_run sudo-each-debug "--debug" true
