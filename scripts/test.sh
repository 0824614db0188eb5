#!/usr/bin/env bash
# Run tower-socketio's test suite with everything it needs in place:
#   * the reference Node.js clients/servers (tests/clients/package.json -> node_modules)
#   * the reference Python clients (tests/clients/requirements.txt -> target/pyenv venv)
#   * a Redis server on 127.0.0.1:6379 (for the redis adapter / cluster tests)
#   * a PostgreSQL server on 127.0.0.1:5432 with trust auth for 127.0.0.1 and a database
#     `test` (for the postgres adapter tests), from Debian's `postgresql` package
# then `cargo test --all-features "$@"`.
#
# Environment:
#   TSIO_REQUIRE_SERVICES=1  a missing node/npm, python3 or redis is an error instead
#                            of a warning (CI sets this; tests then never skip).
#   TSIO_SKIP_CARGO=1        do everything except the final `cargo test`.
#   TSIO_REDIS_PORT=N        use/start Redis on 127.0.0.1:N instead of 6379.
#   TSIO_POSTGRES_PORT=N     use/start PostgreSQL on 127.0.0.1:N instead of 5432.
#
# Exported for the tests:
#   TSIO_NODE_MODULES  <repo>/tests/clients/node_modules   (empty if node is unavailable)
#   TSIO_NODE          path to the node binary              (empty if node is unavailable)
#   TSIO_PYTHON        <repo>/target/pyenv/bin/python       (empty if python is unavailable)
#   TSIO_REDIS_URL     redis://127.0.0.1:6379               (empty if redis is unavailable)
#   TSIO_POSTGRES_URL  postgres://postgres@127.0.0.1:5432/test (empty if postgres is unavailable)
#   TSIO_CHROMIUM      path to Debian's chromium            (empty if unavailable)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"
CLIENTS="$ROOT/tests/clients"
VENV="$ROOT/target/pyenv"
REDIS_HOST=127.0.0.1
REDIS_PORT="${TSIO_REDIS_PORT:-6379}" # override only for testing this script
PG_HOST=127.0.0.1
PG_PORT="${TSIO_POSTGRES_PORT:-5432}" # override only for testing this script

# ---------------------------------------------------------------- helpers
header() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '\n    WARNING: %s\n\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

is_true() {
    case "${1:-}" in 1 | true | TRUE | True | yes | YES | on) return 0 ;; *) return 1 ;; esac
}
REQUIRE=0
if is_true "${TSIO_REQUIRE_SERVICES:-}"; then REQUIRE=1; fi

# A service is unavailable: fail under TSIO_REQUIRE_SERVICES=1, warn otherwise.
missing() {
    if [ "$REQUIRE" = 1 ]; then
        die "$1 (TSIO_REQUIRE_SERVICES=1, so this is fatal)"
    fi
    warn "$1 -- the tests that need it will be SKIPPED."
}

is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=0
# apt_install PKG... : install Debian packages when we are root; returns non-zero
# (never exits) on failure so callers can decide what to do.
apt_install() {
    if ! have apt-get; then
        info "apt-get not available; cannot install: $*"
        return 1
    fi
    if ! is_root; then
        info "not root; install manually with: sudo apt-get install -y $*"
        return 1
    fi
    info "installing Debian packages: $*"
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" </dev/null
}

# Run a command with a time limit when coreutils' timeout is available.
with_timeout() {
    local secs="$1"
    shift
    if have timeout; then timeout "$secs" "$@"; else "$@"; fi
}

# ---------------------------------------------------------------- node / npm
header "Node.js test clients (tests/clients)"
export TSIO_NODE_MODULES=""
export TSIO_NODE=""
if ! have node || ! have npm; then
    info "node and/or npm not found on PATH"
    apt_install nodejs npm || true
    hash -r
fi
if have node && have npm; then
    info "node $(node --version), npm $(npm --version)"
    stamp="$CLIENTS/node_modules/.tsio-installed"
    if [ ! -d "$CLIENTS/node_modules" ] || [ ! -e "$stamp" ] ||
        [ "$CLIENTS/package-lock.json" -nt "$stamp" ] ||
        [ "$CLIENTS/package.json" -nt "$stamp" ]; then
        info "running npm ci"
        (cd "$CLIENTS" && npm ci --no-audit --no-fund) || die "npm ci failed in $CLIENTS"
        touch "$stamp"
    else
        info "node_modules is up to date with package-lock.json"
    fi
    TSIO_NODE_MODULES="$CLIENTS/node_modules"
    TSIO_NODE="$(command -v node)"
else
    missing "node/npm are not available (install Debian packages 'nodejs npm', or Node.js >= 18)"
fi

# ---------------------------------------------------------------- python venv
header "Python test clients (target/pyenv)"
export TSIO_PYTHON=""
if ! have python3; then
    info "python3 not found on PATH"
    apt_install python3 python3-venv || true
    hash -r
fi
if have python3; then
    info "$(python3 --version 2>&1) at $(command -v python3)"
    stamp="$VENV/.tsio-installed"
    py_ok=0
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        py_ok=1
    fi
    if [ "$py_ok" = 0 ] || [ ! -e "$stamp" ] || [ "$CLIENTS/requirements.txt" -nt "$stamp" ]; then
        if [ "$py_ok" = 0 ]; then
            info "creating venv at $VENV"
            rm -rf "$VENV"
            mkdir -p "$ROOT/target"
            if ! python3 -m venv "$VENV"; then
                # Debian's python3 needs python3-venv for ensurepip.
                rm -rf "$VENV"
                apt_install python3-venv || true
                python3 -m venv "$VENV" || die "could not create a venv with python3 -m venv"
            fi
        fi
        info "installing tests/clients/requirements.txt"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
            -r "$CLIENTS/requirements.txt" || die "pip install failed"
        touch "$stamp"
    else
        info "venv is up to date with requirements.txt"
    fi
    TSIO_PYTHON="$VENV/bin/python"
else
    missing "python3 is not available (install Debian packages 'python3 python3-venv')"
fi

# ---------------------------------------------------------------- redis
header "Redis on $REDIS_HOST:$REDIS_PORT"
export TSIO_REDIS_URL=""

redis_ping() {
    if have redis-cli; then
        with_timeout 2 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
    else
        # shellcheck disable=SC2016
        with_timeout 2 bash -c '
            exec 3<>"/dev/tcp/$0/$1" || exit 1
            printf "PING\r\n" >&3
            IFS= read -r -t 1 line <&3 || exit 1
            [[ "$line" == +PONG* ]]' "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

# Wait up to 10 s (wall clock) for PONG.
wait_redis() {
    local deadline=$((SECONDS + 10))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if redis_ping; then return 0; fi
        sleep 0.2
    done
    return 1
}

redis_up=0
if redis_ping; then
    redis_up=1
    info "redis is answering"
else
    info "redis is not answering"
    if ! have redis-server; then
        apt_install redis-server || true
        hash -r
        # The package's post-install may already have started it.
        if have redis-server && redis_ping; then
            redis_up=1
            info "redis was started by its package"
        fi
    fi
    if [ "$redis_up" = 0 ] && have redis-server; then
        info "starting redis-server (daemonized, no persistence)"
        redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
            --save "" --appendonly no || info "redis-server failed to start"
        if wait_redis; then
            redis_up=1
            info "redis is answering"
        fi
    fi
fi
if [ "$redis_up" = 1 ]; then
    TSIO_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
    info "TSIO_REDIS_URL=$TSIO_REDIS_URL"
elif have redis-server; then
    missing "started redis-server, but nothing answers PING on $REDIS_HOST:$REDIS_PORT within 10 s (port taken by something else?)"
else
    missing "no Redis answers PING on $REDIS_HOST:$REDIS_PORT and redis-server is not installed (Debian package 'redis-server')"
fi

# ---------------------------------------------------------------- postgresql
header "PostgreSQL on $PG_HOST:$PG_PORT"
export TSIO_POSTGRES_URL=""

pg_answers() {
    if have pg_isready; then
        with_timeout 5 pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1
    else
        with_timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$PG_HOST" "$PG_PORT" 2>/dev/null
    fi
}

# Wait up to 30 s (wall clock) for the server to accept connections.
wait_pg() {
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if pg_answers; then return 0; fi
        sleep 0.3
    done
    return 1
}

# psql as the postgres user over TCP, no password prompt.
pg_sql() {
    PGCONNECT_TIMEOUT=5 psql -X -q -w -h "$PG_HOST" -p "$PG_PORT" -U postgres "$@"
}

# The newest PostgreSQL server installed by Debian's packages, e.g. 15.
pg_version() {
    local d
    for d in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$d" ] && basename "$(dirname "$(dirname "$d")")"
    done | sort -n | tail -n 1
}

# "<version> <name>" of the Debian cluster configured for $PG_PORT, if any.
pg_cluster_on_port() {
    have pg_lsclusters || return 0
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

pg_started=""   # "<version> <name>" of a Debian cluster this script started
pg_up=0
if pg_answers; then
    pg_up=1
    info "postgresql is answering"
else
    info "postgresql is not answering"
    if [ -z "$(pg_version)" ]; then
        apt_install postgresql postgresql-client || true
        hash -r
        # The package's post-install may have created and started a cluster already.
        if pg_answers; then
            pg_up=1
            info "postgresql was started by its package"
        fi
    fi
    ver="$(pg_version)"
    if [ "$pg_up" = 0 ] && [ -n "$ver" ]; then
        if is_root && have pg_ctlcluster; then
            cluster="$(pg_cluster_on_port)"
            if [ -z "$cluster" ]; then
                # A cluster of our own, trusting local and 127.0.0.1 connections.
                info "creating PostgreSQL $ver cluster tsio on port $PG_PORT (trust auth)"
                pg_createcluster --port "$PG_PORT" "$ver" tsio -- \
                    --auth-local=trust --auth-host=trust >/dev/null ||
                    info "pg_createcluster failed"
                cluster="$(pg_cluster_on_port)"
            fi
            if [ -n "$cluster" ]; then
                info "starting cluster $cluster"
                # shellcheck disable=SC2086 # "<version> <name>" is two arguments
                pg_ctlcluster $cluster start || info "pg_ctlcluster $cluster start failed"
                pg_started="$cluster"
            fi
        elif ! is_root; then
            # Without root, a private server owned by this user under target/.
            bin="/usr/lib/postgresql/$ver/bin"
            data="$ROOT/target/pgdata"
            if [ ! -e "$data/PG_VERSION" ]; then
                info "initdb $data (trust auth)"
                rm -rf "$data"
                mkdir -p "$ROOT/target"
                "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null ||
                    info "initdb failed"
            fi
            info "starting a private postgres from $data"
            "$bin/pg_ctl" -D "$data" -l "$ROOT/target/pgdata.log" -w -t 30 \
                -o "-c listen_addresses=$PG_HOST -p $PG_PORT -k $ROOT/target" start >/dev/null ||
                info "pg_ctl start failed (see target/pgdata.log)"
        fi
        if wait_pg; then
            pg_up=1
            info "postgresql is answering"
        fi
    fi
fi
if [ "$pg_up" = 1 ] && ! have psql; then
    apt_install postgresql-client || true
    hash -r
fi
if [ "$pg_up" = 1 ] && have psql && ! pg_sql -d postgres -Atc 'SELECT 1' >/dev/null 2>&1 &&
    [ -n "$pg_started" ]; then
    # A cluster this script started (Debian's default asks for a password over TCP): let
    # the postgres user in from 127.0.0.1 without one.
    hba="/etc/postgresql/${pg_started% *}/${pg_started#* }/pg_hba.conf"
    if [ -f "$hba" ]; then
        info "trusting postgres@$PG_HOST in $hba"
        sed -i "1i host all postgres $PG_HOST/32 trust" "$hba"
        # shellcheck disable=SC2086
        pg_ctlcluster $pg_started reload || true
    fi
fi
if [ "$pg_up" = 1 ] && have psql; then
    if ! pg_sql -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
        pg_up=0
        pg_why="PostgreSQL on $PG_HOST:$PG_PORT refuses user postgres without a password (allow it with a 'host all postgres $PG_HOST/32 trust' line in pg_hba.conf)"
    elif [ "$(pg_sql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
        info "creating database test"
        pg_sql -d postgres -c 'CREATE DATABASE test' || info "CREATE DATABASE test failed"
    fi
fi
if [ "$pg_up" = 1 ]; then
    TSIO_POSTGRES_URL="postgres://postgres@$PG_HOST:$PG_PORT/test"
    info "TSIO_POSTGRES_URL=$TSIO_POSTGRES_URL"
elif [ -n "${pg_why:-}" ]; then
    missing "$pg_why"
elif [ -n "$(pg_version)" ]; then
    missing "PostgreSQL is installed, but nothing answers on $PG_HOST:$PG_PORT within 30 s"
else
    missing "no PostgreSQL answers on $PG_HOST:$PG_PORT and the server is not installed (Debian package 'postgresql')"
fi

# ---------------------------------------------------------------- chromium
header "Chromium (browser test of the chat example)"
export TSIO_CHROMIUM=""
if ! have chromium; then
    apt_install chromium || true
fi
if have chromium; then
    TSIO_CHROMIUM="$(command -v chromium)"
    info "chromium: $TSIO_CHROMIUM"
else
    missing "chromium is not installed (Debian package 'chromium')"
fi

# ---------------------------------------------------------------- cargo test
header "Test environment"
info "TSIO_NODE_MODULES=$TSIO_NODE_MODULES"
info "TSIO_NODE=$TSIO_NODE"
info "TSIO_PYTHON=$TSIO_PYTHON"
info "TSIO_REDIS_URL=$TSIO_REDIS_URL"
info "TSIO_POSTGRES_URL=$TSIO_POSTGRES_URL"
info "TSIO_CHROMIUM=$TSIO_CHROMIUM"
info "TSIO_REQUIRE_SERVICES=${TSIO_REQUIRE_SERVICES:-}"

if is_true "${TSIO_SKIP_CARGO:-}"; then
    header "cargo test skipped (TSIO_SKIP_CARGO=${TSIO_SKIP_CARGO})"
    exit 0
fi

header "cargo test --all-features $*"
cargo test --all-features "$@"
