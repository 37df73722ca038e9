#!/bin/bash
# A real PostgreSQL on loopback for the shared MFA store and journal: Debian's `postgresql`
# server binaries, run as their own cluster under $CADENAS_LAB_DIR/postgres (own initdb, own
# port, TLS certificate from the lab CA), never the system's cluster.
#
#   lab/postgres.sh start     127.0.0.1:15432, TLS only (hostssl + scram-sha-256; plain TCP is
#                             rejected), role `cadenas` (CREATEDB) with a random password in
#                             postgres/cadenas.pw, database `cadenas`
#   lab/postgres.sh stop | restart | status
#
# Writes $CADENAS_LAB_DIR/postgres/{data/,cadenas.pw,lab.env,server.log}. lab.env names the URL,
# password file and CA for tests (CADENAS_LAB_PG_URL, CADENAS_LAB_PG_PASSWORD_FILE,
# CADENAS_LAB_PG_CA). The data directory is made anew by `start`; `restart` keeps it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
. "$HERE/lib.sh"

D=$LAB/postgres
PORT=${CADENAS_LAB_PG_PORT:-15432}

bindir() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$b" ] && [ -x "$b/initdb" ] || return 1
  echo "$b"
}

as_pg() { runuser -u postgres -- "$@"; }

pg_running() { [ -s "$D/data/postmaster.pid" ] && kill -0 "$(head -1 "$D/data/postmaster.pid")" 2>/dev/null; }

stop() {
  local b
  b=$(bindir) || return 0
  if pg_running; then as_pg "$b/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null; fi
}

run() {
  local b; b=$(bindir)
  as_pg "$b/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 60 start >/dev/null || { tail -20 "$D/server.log" >&2; die "PostgreSQL did not start"; }
}

start() {
  bindir >/dev/null || apt_install /usr/lib/postgresql:postgresql
  local b; b=$(bindir) || die "no PostgreSQL server binaries after installing postgresql"
  # the package's own cluster is not used (policy-rc.d kept it from starting when installed)
  stop
  rm -rf "$D"; mkdir -p "$D"
  lab_server_cert "$D" postgres
  chown -R postgres: "$D"
  chmod 700 "$D"
  as_pg "$b/initdb" -D "$D/data" -U postgres -A peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$D/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$D'
ssl = on
ssl_cert_file = '$D/cert.pem'
ssl_key_file = '$D/key.pem'
max_connections = 100
log_min_messages = warning
EOF
  # TLS or nothing over TCP; the Unix socket (in the lab directory) only for the postgres role
  cat > "$D/data/pg_hba.conf" <<EOF
local   all all                peer
hostssl all all 127.0.0.1/32   scram-sha-256
host    all all 127.0.0.1/32   reject
EOF
  run
  local pw; pw=$(openssl rand -hex 24)
  ( umask 077; printf '%s\n' "$pw" > "$D/cadenas.pw" )
  as_pg psql -q -h "$D" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE cadenas LOGIN CREATEDB PASSWORD '$pw'" \
    -c "CREATE DATABASE cadenas OWNER cadenas" >/dev/null
  cat > "$D/lab.env" <<EOF
CADENAS_LAB_PG_URL=postgresql://cadenas@127.0.0.1:$PORT/cadenas
CADENAS_LAB_PG_PASSWORD_FILE=$D/cadenas.pw
CADENAS_LAB_PG_CA=$CA_DIR/ca.pem
CADENAS_LAB_PG_PORT=$PORT
EOF
  quote_env "$D/lab.env"
  lap "postgresql ready: 127.0.0.1:$PORT (TLS), role cadenas"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; run ;;
  status) pg_running && echo running || { echo stopped; exit 1; } ;;
  *) die "usage: $0 start|stop|restart|status" ;;
esac
