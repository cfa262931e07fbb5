#!/usr/bin/env bash
# database-backup-restorer benchmark (issue 5): a ~1 GiB PostgreSQL 15 database, timed in the
# same run (alternating, medians of RUNS):
#   backup baseline:  pg_dump -Fc -f FILE DB                         (bare, same pg_dump)
#   backup:           database-backup-restorer --backup  (version probe + pg_dump --verbose -Fc)
#   restore baseline: pg_restore --clean --if-exists --single-transaction --exit-on-error -d DB FILE
#   restore:          database-backup-restorer --restore (version probe, --list, TOC filter,
#                     the same pg_restore with --use-list)
# Both restores load the same archive over the populated database. Prints medians and ratios of
# wall-clock time, and of client CPU time (user+sys of the command and its children, which
# shows the wrapper's own cost even when other work on the machine makes wall-clock noisy).
# Needs root. On a busy machine run it as `nice -n -15 bench/db.sh`. Env: SIZE_MIB (default 1024), RUNS (default 3), KEEP=1 keeps the work dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
bash .ci/install-db-deps.sh >/dev/null
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q bc >/dev/null
cargo build --release -q -p database-backup-restorer
DBR="$ROOT/target/release/database-backup-restorer"
BIN=/usr/lib/postgresql/15/bin
PW=bench-pw

WORK=$(mktemp -d /tmp/dbr-bench.XXXXXX)
chmod 0755 "$WORK"
DATA="$WORK/data"; OUT="$WORK/out"; mkdir -p "$DATA" "$OUT" "$WORK/tmp"
chown postgres:postgres "$DATA"; chmod 0700 "$DATA"
AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
echo "$PW" > "$WORK/pw"; chown postgres "$WORK/pw"
"${AS_PG[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$WORK/pw" -E UTF8 --locale=C.UTF-8 -N >"$WORK/initdb.log" 2>&1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${AS_PG[@]}" "$BIN/postgres" -D "$DATA" -c listen_addresses=127.0.0.1 -p "$PORT" -k "$DATA" \
  -c shared_buffers=512MB -c maintenance_work_mem=512MB -c max_wal_size=16GB \
  -c checkpoint_timeout=30min -c fsync=off -c full_page_writes=off -c autovacuum=off >"$WORK/server.log" 2>&1 &
PG_PID=$!
cleanup() {
  kill -INT "$PG_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PG_PID" 2>/dev/null || true
  [ "${KEEP:-}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
PSQL=("$BIN/psql" -X -q -h "$DATA" -p "$PORT" -U postgres -v ON_ERROR_STOP=1)
for _ in $(seq 1 200); do "${PSQL[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
"${PSQL[@]}" -d postgres -c "CREATE ROLE bench LOGIN PASSWORD '$PW'" -c "CREATE DATABASE benchdb OWNER bench"

echo "== creating a ~${SIZE_MIB} MiB database"
"${PSQL[@]}" -d benchdb <<'SQL'
SET ROLE bench;
CREATE SCHEMA app;
CREATE TABLE app.events (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL,
  payload jsonb, note text);
CREATE TABLE public.accounts (id bigint PRIMARY KEY, name text, balance numeric(14,2), tags text[]);
CREATE INDEX events_at_idx ON app.events (at);
SQL
n=0
while :; do
  size=$("${PSQL[@]}" -d benchdb -At -c "SELECT pg_database_size('benchdb') / 1048576")
  [ "$size" -ge "$SIZE_MIB" ] && break
  "${PSQL[@]}" -d benchdb -c "SET ROLE bench;
    INSERT INTO app.events SELECT g, timestamptz '2020-01-01' + g * interval '1 second',
      (ARRAY['login','logout','buy','sell'])[1 + g % 4],
      jsonb_build_object('user', g % 10007, 'amount', g % 997, 'h', md5(g::text)),
      md5((g * 7)::text) || ' ' || md5((g * 13)::text)
    FROM generate_series($n + 1, $n + 1000000) g;
    INSERT INTO public.accounts SELECT g, 'account ' || g, (g % 100000) / 7.0, ARRAY[md5(g::text)]
    FROM generate_series($n / 10 + 1, $n / 10 + 100000) g;"
  n=$((n + 1000000))
done
"${PSQL[@]}" -d benchdb -c "VACUUM ANALYZE"
echo "database size: $("${PSQL[@]}" -d benchdb -At -c "SELECT pg_size_pretty(pg_database_size('benchdb'))"), $n event rows"

cat > "$WORK/config.json" <<JSON
{"username": "bench", "password": "$PW", "host": "127.0.0.1", "port": $PORT,
 "adapter": "postgres", "database": "benchdb"}
JSON
DBR_ENV=(env -i PATH=/usr/bin:/bin TMPDIR="$WORK/tmp" BBR_DB_CLIENT_DIRS="$BIN")
CONN=(-h 127.0.0.1 -p "$PORT" -U bench)

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A T C
timed() { # name, function
  local name=$1; shift
  local s e; sync; s=$(now)
  /usr/bin/time -f '%U %S' -o "$WORK/cpu" bash -c "$(declare -f "$1"); $(declare -p BIN PW CONN DBR DBR_ENV OUT WORK); $1"
  e=$(now)
  local d cpu; d=$(echo "$e - $s" | bc -l)
  cpu=$(awk '{print $1 + $2}' "$WORK/cpu")
  T[$name]+="$d "; C[$name]+="$cpu "
  printf '  %-16s %8.2f s wall  %7.2f s client cpu\n' "$name" "$d" "$cpu"
}
bare_backup() { PGPASSWORD=$PW "$BIN/pg_dump" "${CONN[@]}" -Fc -f "$OUT/bare.dump" benchdb; }
dbr_backup() {
  "${DBR_ENV[@]}" "$DBR" --backup --config "$WORK/config.json" --artifact-file "$OUT/dbr.dump" \
    2>"$OUT/dbr-backup.log"
}
bare_restore() {
  PGPASSWORD=$PW "$BIN/pg_restore" "${CONN[@]}" -d benchdb --clean --if-exists \
    --single-transaction --exit-on-error "$OUT/bare.dump"
}
dbr_restore() {
  "${DBR_ENV[@]}" "$DBR" --restore --config "$WORK/config.json" --artifact-file "$OUT/bare.dump" \
    >/dev/null 2>"$OUT/dbr-restore.log"
}

echo "== backup ($RUNS runs each, alternating)"
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) -eq 1 ]; then timed pg_dump bare_backup; timed dbr-backup dbr_backup
  else timed dbr-backup dbr_backup; timed pg_dump bare_backup; fi
done
echo "archive sizes: bare $(stat -c %s "$OUT/bare.dump") B, dbr $(stat -c %s "$OUT/dbr.dump") B"
echo "== restore ($RUNS runs each, alternating)"
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) -eq 1 ]; then timed pg_restore bare_restore; timed dbr-restore dbr_restore
  else timed dbr-restore dbr_restore; timed pg_restore bare_restore; fi
done
rows=$("${PSQL[@]}" -d benchdb -At -c "SELECT count(*) FROM app.events")
[ "$rows" -eq "$n" ] || { echo "restored row count $rows != $n" >&2; exit 1; }

med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | median; }
report() { # label, bare name, dbr name, bare label, dbr label
  local bw dw bc_ dc
  bw=$(med "${T[$2]}"); dw=$(med "${T[$3]}"); bc_=$(med "${C[$2]}"); dc=$(med "${C[$3]}")
  printf '%-8s %-12s %7.2f s   %-36s %7.2f s   ratio %.3f   (client cpu %.2f s vs %.2f s)\n' \
    "$1" "$4" "$bw" "$5" "$dw" "$(echo "$dw / $bw" | bc -l)" "$bc_" "$dc"
}
echo "== medians of $RUNS (wall clock; ratio = database-backup-restorer / bare)"
report backup: pg_dump dbr-backup "pg_dump -Fc" "database-backup-restorer --backup"
report restore: pg_restore dbr-restore "pg_restore" "database-backup-restorer --restore"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
