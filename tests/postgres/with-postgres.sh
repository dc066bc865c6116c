#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server:
#
#   tests/postgres/with-postgres.sh CMD [ARGS...]
#
# Installs Debian's PostgreSQL server if it is missing, creates a cluster with `initdb` in a
# temporary directory, starts it on a free loopback port (as the `postgres` user when run as
# root: the server refuses to run as root), exports
#
#   CAPSA_TEST_POSTGRES_URL   postgres://capsa@127.0.0.1:PORT/capsa
#   CAPSA_TEST_STATE_STORE    postgres (the staging tests then run on PostgreSQL)
#   CAPSA_TEST_POSTGRES_CTL   "<this script> ctl DATADIR": `$CAPSA_TEST_POSTGRES_CTL kill` stops
#                             the server the hard way (immediate shutdown, as a crash) and
#                             `$CAPSA_TEST_POSTGRES_CTL start` starts it again on the same port
#
# runs CMD, and always stops the server and removes the directory (trap), whatever CMD does.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"

pgbin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; fi
  done | sort -V | tail -1
}

as_pg() {
  # Run a command as the user owning the cluster.
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = "ctl" ]; then
  # ctl DATADIR kill|start|stop
  data="$2"; action="$3"; bin="$(pgbin)"
  case "$action" in
    kill) as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null ;;
    stop) as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null ;;
    start) as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null ;;
    *) echo "with-postgres.sh ctl: unknown action $action" >&2; exit 2 ;;
  esac
  exit 0
fi

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

bin="$(pgbin)"
if [ -z "$bin" ]; then
  echo "with-postgres: installing Debian's PostgreSQL server"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  bin="$(pgbin)"
fi
[ -n "$bin" ] || { echo "with-postgres: no initdb found after installing postgresql" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/capsa-pg.XXXXXX")"
data="$tmp/data"
chmod 755 "$tmp"
mkdir "$data"
[ "$(id -u)" -eq 0 ] && chown postgres: "$tmp" "$data"

cleanup() {
  as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

as_pg "$bin/initdb" -D "$data" -U capsa --auth=trust -E UTF8 --no-locale >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp'
max_connections = 200
fsync = off
full_page_writes = off
CONF
# fsync off: a throwaway test server; the crash test kills the server, not the machine, so
# committed transactions (synchronous_commit stays on) survive it as they would in production.
as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
  || { cat "$data/server.log" >&2; exit 1; }
as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U capsa capsa

export CAPSA_TEST_POSTGRES_URL="postgres://capsa@127.0.0.1:$port/capsa"
export CAPSA_TEST_STATE_STORE=postgres
export CAPSA_TEST_POSTGRES_CTL="$self ctl $data"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data)"
set +e
"$@"
code=$?
set -e
exit $code
