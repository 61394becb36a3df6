#!/usr/bin/env bash
# Find PostgreSQL for the tests, starting the local cluster if it is down.
# TEST_DATABASE_URL (postgresql+asyncpg://user@host:port/db) wins; else 127.0.0.1:5432.
# With CI=true a PostgreSQL we cannot reach is an error; elsewhere the storage tests that
# need it say so and skip.
set -u
url="${TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"
hostport=$(echo "$url" | sed -E 's#^[^/]*//([^@/]*@)?([^/]+)/.*$#\2#')
host=${hostport%%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=5432

up() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if up; then exit 0; fi
if [ -z "${TEST_DATABASE_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    echo "PostgreSQL is down; starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do up && exit 0; sleep 1; done
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL not reachable at $host:$port and CI=true: failing" >&2
  exit 1
fi
echo "PostgreSQL not reachable at $host:$port: PostgreSQL tests will be skipped" >&2
exit 0
