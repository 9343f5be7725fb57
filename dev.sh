#!/usr/bin/env bash
# metabridge developer entry point. Needs only Python 3.11+ on the machine.
#
#   ./dev.sh start        set up, then run metabridge on the embedded defaults (SQLite + Graph API sandbox)
#   ./dev.sh test [ARGS]  set up, then run the whole test suite (ARGS go to pytest)
#   ./dev.sh bench        set up, then run the benchmarks against the official facebook-business SDK
#   ./dev.sh metabridge ARGS...   run any metabridge command inside the project's environment
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV="${METABRIDGE_VENV:-.venv}"

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "metabridge needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

# Create the virtual environment and install the pinned dependencies (once per change of pins).
setup() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(find_python)" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$extras"
    local want
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c constraints.txt -e ".[$extras]"
        echo "$want" >"$stamp"
    fi
}

# The PostgreSQL tests never skip. Use the server on 127.0.0.1:5432 when one answers; otherwise make sure
# server binaries exist so the tests can start a throwaway cluster (tests/_postgres.py).
ensure_postgres() {
    if "$VENV/bin/python" -c "import psycopg; psycopg.connect('${METABRIDGE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}', connect_timeout=3).close()" 2>/dev/null; then
        return
    fi
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
        return
    fi
    echo "no PostgreSQL at 127.0.0.1:5432 and no server binaries: installing Debian's postgresql package" >&2
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "install PostgreSQL server binaries (e.g. sudo apt-get install postgresql) or set METABRIDGE_TEST_POSTGRES_URL" >&2
        exit 1
    fi
}

command="${1:-start}"
shift || true
case "$command" in
    start)
        setup test
        exec "$VENV/bin/metabridge" serve --demo "$@"
        ;;
    test)
        setup test
        ensure_postgres
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    bench)
        setup bench
        exec "$VENV/bin/python" -m benchmarks "$@"
        ;;
    metabridge)
        setup test
        exec "$VENV/bin/metabridge" "$@"
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
