#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 and the test database exists.
# Used by `make test` and `.ci/run`; safe to run again.
set -euo pipefail
host=127.0.0.1
port=5432
if ! pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  echo "PostgreSQL is not answering on $host:$port; starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && break
    sleep 1
  done
fi
pg_isready -h "$host" -p "$port"
for db in falsework_test falsework_bench; do
  if ! psql -h "$host" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    psql -h "$host" -p "$port" -U postgres -c "CREATE DATABASE $db" >/dev/null
    echo "created database $db"
  fi
done
# PgBouncer, for tests/acceptance/api/test_pgbouncer.py (Falsework behind it in session mode)
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "installing pgbouncer"
  apt-get install -y -q pgbouncer >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q pgbouncer >/dev/null; }
fi
