#!/usr/bin/env bash
# Run tower-socketio's test suite with everything it needs in place:
#   * the reference Node.js clients/servers (tests/clients/package.json -> node_modules)
#   * the reference Python clients (tests/clients/requirements.txt -> target/pyenv venv)
#   * a Redis server on 127.0.0.1:6379 (for the redis adapter / cluster tests)
# then `cargo test --all-features "$@"`.
#
# Environment:
#   TSIO_REQUIRE_SERVICES=1  a missing node/npm, python3 or redis is an error instead
#                            of a warning (CI sets this; tests then never skip).
#   TSIO_SKIP_CARGO=1        do everything except the final `cargo test`.
#   TSIO_REDIS_PORT=N        use/start Redis on 127.0.0.1:N instead of 6379.
#
# Exported for the tests:
#   TSIO_NODE_MODULES  <repo>/tests/clients/node_modules   (empty if node is unavailable)
#   TSIO_NODE          path to the node binary              (empty if node is unavailable)
#   TSIO_PYTHON        <repo>/target/pyenv/bin/python       (empty if python is unavailable)
#   TSIO_REDIS_URL     redis://127.0.0.1:6379               (empty if redis is unavailable)
#   TSIO_CHROMIUM      path to Debian's chromium            (empty if unavailable)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"
CLIENTS="$ROOT/tests/clients"
VENV="$ROOT/target/pyenv"
REDIS_HOST=127.0.0.1
REDIS_PORT="${TSIO_REDIS_PORT:-6379}" # override only for testing this script

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
info "TSIO_CHROMIUM=$TSIO_CHROMIUM"
info "TSIO_REQUIRE_SERVICES=${TSIO_REQUIRE_SERVICES:-}"

if is_true "${TSIO_SKIP_CARGO:-}"; then
    header "cargo test skipped (TSIO_SKIP_CARGO=${TSIO_SKIP_CARGO})"
    exit 0
fi

header "cargo test --all-features $*"
cargo test --all-features "$@"
