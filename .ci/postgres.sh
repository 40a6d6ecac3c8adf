# Sourced by .ci/run and the bench scripts: starts a throwaway PostgreSQL 15 cluster in a
# temp dir on a free port, as a non-root user, and stops it when the shell exits.
# After `start_postgres`, POSTGRES_URL points at its `postgres` database.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${PG_USER:-bantin-pg}

install_postgres() {
    if [ ! -x "$PG_BIN/initdb" ]; then
        echo "installing PostgreSQL 15 (no $PG_BIN/initdb)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    fi
}

# Runs a command as the cluster's owner: PostgreSQL refuses to run as root.
as_pg_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

start_postgres() {
    install_postgres
    if [ "$(id -u)" = 0 ] && ! id -u "$PG_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    fi
    PG_DIR=$(mktemp -d /tmp/bantin-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DIR"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg_user "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    trap stop_postgres EXIT
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off" >/dev/null
    POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export POSTGRES_URL
    echo "PostgreSQL 15 running on 127.0.0.1:$port (data in $PG_DIR)" >&2
}
