#!/usr/bin/env bash
# Start or stop a private PostgreSQL server for the tests, on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR PORT   # prints the SQLAlchemy URL on stdout
#   scripts/postgres.sh stop DIR
#
# Uses Debian's postgresql package (scripts/setup.sh installs it under CI).
# The server's files live in DIR, it listens on 127.0.0.1:PORT only, and it
# trusts local connections: it is a throwaway test database, never a real one.
# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` user that Debian's package creates.
set -euo pipefail

action=${1:?usage: scripts/postgres.sh start DIR PORT | stop DIR}
dir=${2:?give the data folder, e.g. /tmp/al_ray_pg}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$bin" ]]; then
    echo "PostgreSQL is not installed; run: apt-get install -y postgresql" >&2
    exit 1
fi

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    port=${3:?give the port, e.g. 55432}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    if [[ ! -f "$dir/PG_VERSION" ]]; then
        as_owner "$bin/initdb" -D "$dir" -U al_ray --auth=trust --encoding=UTF8 >"$dir/../$(basename "$dir").initdb.log" 2>&1
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U al_ray al_ray_test 2>/dev/null || true
    echo "postgresql+psycopg://al_ray@127.0.0.1:$port/al_ray_test"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
*)
    echo "unknown action $action; use start or stop" >&2
    exit 2
    ;;
esac
