#!/usr/bin/env bash
# Drain and restore benchmark (issue: director mode).
#
# One VM holds a 1 GiB artifact of incompressible data in 8 files. We time, in the same run
# and with the same cipher (aes128-gcm):
#   backup baseline:  ssh vm 'sudo tar -C dir -c .' | tee file | openssl dgst -sha256
#   backup plain:     ssh vm 'sudo tar -C dir -c .' > file
#   bbr:              bbr director backup   (lock, backup, unlock, drain with per-file sha256)
#   restore baseline: tee >(openssl dgst -sha256 >/dev/null) < file | ssh vm 'sudo tar -C dir -x'
#   bbr:              bbr director restore  (verify while uploading, lock, restore, unlock)
# and print medians and ratios, plus bbr's peak RSS. Needs root. SIZE_MIB and RUNS override.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
ADDR=127.0.0.88; PORT=2299
source "$(dirname "$0")/one-vm.sh"
SSH=(ssh -q -i "$KEY" -p "$PORT" -c aes128-gcm@openssh.com -o BatchMode=yes
     -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null vcap@"$ADDR")
mkdir -p "$V/store/bench-data" "$V/jobs/bench/bin/bbr"
per=$((SIZE_MIB / 8))
for i in 1 2 3 4 5 6 7 8; do
  openssl rand -out "$V/store/bench-data/part-$i" $((per * 1024 * 1024)) 2>/dev/null ||
    head -c $((per * 1024 * 1024)) /dev/urandom > "$V/store/bench-data/part-$i"
done
cat > "$V/jobs/bench/bin/bbr/backup" <<'S'
#!/bin/sh
cp -al /var/vcap/store/bench-data/. "$BBR_ARTIFACT_DIRECTORY"
S
printf '#!/bin/sh\ntrue\n' > "$V/jobs/bench/bin/bbr/restore"
chmod 0755 "$V/jobs/bench/bin/bbr/"*
sync
OUT="$WORK/out"; mkdir -p "$OUT"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A T
run() { # name, command...
  local name=$1; shift
  local s e; sync; s=$(now); "$@"; e=$(now)
  T[$name]+="$(echo "$e - $s" | bc -l) "
}
base_backup() { "${SSH[@]}" 'sudo -n tar -C /var/vcap/store/bench-data -c .' | tee "$OUT/base.tar" | openssl dgst -sha256 >/dev/null; }
plain_backup() { "${SSH[@]}" 'sudo -n tar -C /var/vcap/store/bench-data -c .' > "$OUT/plain.tar"; }
bbr_backup() {
  rm -rf "$OUT/a"; mkdir -p "$OUT/a"
  /usr/bin/time -f %M -o "$OUT/rss-backup" "$BBR" director --host "$ADDR:$PORT" -u vcap --key "$KEY" \
    --known-hosts "$WORK/kh" backup -a "$OUT/a" > "$OUT/bbr-backup.log"
}
base_restore() {
  "${SSH[@]}" 'sudo -n rm -rf /var/vcap/store/restore-target && sudo -n mkdir -p /var/vcap/store/restore-target'
  tee >(openssl dgst -sha256 >/dev/null) < "$OUT/base.tar" | "${SSH[@]}" 'sudo -n tar -C /var/vcap/store/restore-target -x'
}
bbr_restore() {
  /usr/bin/time -f %M -o "$OUT/rss-restore" "$BBR" director --host "$ADDR:$PORT" -u vcap --key "$KEY" \
    --known-hosts "$WORK/kh" restore -a "$(ls -d "$OUT"/a/*/)" > "$OUT/bbr-restore.log"
  rm -rf "$V/store/bbr-backup"
}
# Both restores start from artifacts that are not in the page cache: bbr's writer drops what
# it has written (as a restore long after the backup would find it), so the baseline's tar is
# evicted too before its run.
evict() { python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
for r in $(seq 1 "$RUNS"); do
  run base_backup base_backup
  run plain_backup plain_backup
  run bbr_backup bbr_backup
  evict "$OUT/base.tar" "$OUT"/a/*/*
  run base_restore base_restore
  run bbr_restore bbr_restore
done
m() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
bb=$(m base_backup); pb=$(m plain_backup); xb=$(m bbr_backup); br=$(m base_restore); xr=$(m bbr_restore)
mib=$SIZE_MIB
printf 'artifact: %d MiB in 8 files, cipher aes128-gcm, %d runs, medians\n' "$mib" "$RUNS"
printf 'backup  baseline ssh|tee|openssl: %6.2fs (%4.0f MiB/s)\n' "$bb" "$(echo "$mib/$bb" | bc -l)"
printf 'backup  plain ssh copy:          %6.2fs (%4.0f MiB/s)\n' "$pb" "$(echo "$mib/$pb" | bc -l)"
printf 'backup  bbr:                     %6.2fs (%4.0f MiB/s)  ratio to baseline %.3f, to plain copy %.3f\n' \
  "$xb" "$(echo "$mib/$xb" | bc -l)" "$(echo "$xb/$bb" | bc -l)" "$(echo "$xb/$pb" | bc -l)"
printf 'restore baseline tee|ssh tar -x: %6.2fs (%4.0f MiB/s)\n' "$br" "$(echo "$mib/$br" | bc -l)"
printf 'restore bbr:                     %6.2fs (%4.0f MiB/s)  ratio to baseline %.3f\n' \
  "$xr" "$(echo "$mib/$xr" | bc -l)" "$(echo "$xr/$br" | bc -l)"
printf 'peak RSS: backup %d KiB, restore %d KiB\n' "$(cat "$OUT/rss-backup")" "$(cat "$OUT/rss-restore")"
