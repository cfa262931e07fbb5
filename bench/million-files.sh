#!/usr/bin/env bash
# A million files in one job (issue 10, item 1: every backup restorable).
#
# One VM job whose backup script creates FILES empty files (default 1,000,000) in 100
# directories of $BBR_ARTIFACT_DIRECTORY; its restore script counts what it was given.
# We run `bbr director backup` and `bbr director restore` once each (release build) and print
# for each the wall time and bbr's peak RSS, plus the metadata size and the file count the
# restore script saw. Needs root. FILES overrides (a multiple of 100).
set -euo pipefail
FILES=${FILES:-1000000}
PER_DIR=$((FILES / 100))
ADDR=127.0.0.89; PORT=2298
source "$(dirname "$0")/one-vm.sh"
SSH=(ssh -q -i "$KEY" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no
     -o UserKnownHostsFile=/dev/null vcap@"$ADDR")
mkdir -p "$V/jobs/bench/bin/bbr" "$V/sys"
# The VM's store on tmpfs (inside its private mount namespace): on this machine's disk a file
# creation costs ~0.5 ms, so the VM's side (the backup script creating the files, tar -x at
# restore, rm -rf twice) would dominate the figures instead of bbr.
"${SSH[@]}" 'sudo -n mount -t tmpfs -o size=4g,nr_inodes=4m,mode=0755 bbr-million /var/vcap/store'
cat > "$V/jobs/bench/bin/bbr/backup" <<S
#!/bin/sh
exec perl -e 'for my \$d (0..99) {
  my \$p = sprintf("%s/d%02d", \$ENV{BBR_ARTIFACT_DIRECTORY}, \$d); mkdir \$p or die "\$p: \$!";
  for my \$f (0..$((PER_DIR - 1))) {
    my \$n = sprintf("%s/f%07d", \$p, \$d * $PER_DIR + \$f);
    open(my \$h, ">", \$n) or die "\$n: \$!"; close \$h;
  }
}'
S
cat > "$V/jobs/bench/bin/bbr/restore" <<'S'
#!/bin/sh
find "$BBR_ARTIFACT_DIRECTORY" -type f | wc -l > /var/vcap/sys/restored-count
S
chmod 0755 "$V/jobs/bench/bin/bbr/"*
OUT="$WORK/out"; mkdir -p "$OUT/a"
now() { date +%s.%N; }
bbr() { # name, bbr args...
  local name=$1; shift
  local s e
  sync; s=$(now)
  /usr/bin/time -f %M -o "$OUT/rss-$name" "$BBR" director --host "$ADDR:$PORT" -u vcap \
    --key "$KEY" --known-hosts "$WORK/kh" "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "bbr $name failed:"; tail -20 "$OUT/$name.log"; exit 1; }
  e=$(now)
  echo "$e - $s" | bc -l > "$OUT/time-$name"
}
bbr backup backup -a "$OUT/a"
ART=$(ls -d "$OUT"/a/*/)
META=$(stat -c %s "$ART/metadata")
TAR=$(stat -c %s "$ART"/*.tar)
bbr restore restore -a "$ART"
SEEN=$(cat "$V/sys/restored-count")
printf 'files: %d in 100 dirs; metadata %.1f MB, tar %.1f MB; restore script saw %d files\n' \
  "$FILES" "$(echo "$META/1000000" | bc -l)" "$(echo "$TAR/1000000" | bc -l)" "$SEEN"
printf 'backup : %7.1fs  peak RSS %d KiB\n' "$(cat "$OUT/time-backup")" "$(cat "$OUT/rss-backup")"
printf 'restore: %7.1fs  peak RSS %d KiB\n' "$(cat "$OUT/time-restore")" "$(cat "$OUT/rss-restore")"
[ "$SEEN" -eq "$FILES" ] || { echo "restore saw $SEEN files, expected $FILES"; exit 1; }
