#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (tests/databases.py, .ci/run).
#
#   tools/postgres.sh install     install Debian's `postgresql` package with apt-get (as root)
#                                 when no server binaries are found; otherwise do nothing
#   tools/postgres.sh start DIR   create a cluster in DIR (initdb), start it on a free port of
#                                 127.0.0.1 with its unix socket in DIR, and print
#                                 `export INCENTIVES_TEST_POSTGRES=<SQLAlchemy URL>`
#   tools/postgres.sh stop DIR    stop the cluster in DIR (the caller removes DIR)
#
# The cluster is for tests only: no fsync, a random password for the superuser `postgres`
# over TCP (scram-sha-256), trust over the unix socket in DIR (which only DIR's owner can
# reach). PostgreSQL refuses to run as root: as root, DIR is given to the `postgres` user
# and the server runs as that user (runuser). The binaries come from `pg_config --bindir`,
# else the newest /usr/lib/postgresql/*/bin.
set -euo pipefail

bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# run a server command as the cluster's owner
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

cmd="${1:-}"
case "$cmd" in
install)
    if dir="$(bindir)"; then
        echo "postgres.sh: PostgreSQL server binaries found in $dir" >&2
        exit 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "postgres.sh: no PostgreSQL server found; install Debian's postgresql package" \
             "(sudo apt-get install postgresql) or run this as root" >&2
        exit 1
    fi
    echo "postgres.sh: installing Debian's postgresql package (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    bindir >/dev/null || { echo "postgres.sh: postgresql installed but no initdb found" >&2; exit 1; }
    ;;
start)
    target="${2:?usage: tools/postgres.sh start DIR}"
    dir="$(bindir)" || { echo "postgres.sh: no PostgreSQL server binaries (run: tools/postgres.sh install)" >&2; exit 1; }
    mkdir -p "$target"
    target="$(cd "$target" && pwd)"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "postgres.sh: running as root needs a 'postgres' user" >&2; exit 1; }
        chown postgres "$target"
        chmod 700 "$target"
        runuser -u postgres -- test -w "$target" || {
            echo "postgres.sh: the postgres user cannot reach $target (a parent folder is private?)" >&2
            exit 1
        }
    fi
    password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    as_owner sh -c "umask 077; printf '%s\n' '$password' > '$target/pwfile'"
    as_owner "$dir/initdb" -D "$target/data" -U postgres --pwfile="$target/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 -N >/dev/null \
        || as_owner "$dir/initdb" -D "$target/data" -U postgres --pwfile="$target/pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale -N >/dev/null
    as_owner rm -f "$target/pwfile"
    started=""
    for _ in 1 2 3 4 5; do
        port="$(free_port)"
        if as_owner "$dir/pg_ctl" -D "$target/data" -l "$target/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$target' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
            start >/dev/null; then
            started=1
            break
        fi
    done
    [ -n "$started" ] || { echo "postgres.sh: the server did not start; see $target/server.log" >&2; tail -n 20 "$target/server.log" >&2 || true; exit 1; }
    echo "export INCENTIVES_TEST_POSTGRES='postgresql+psycopg://postgres:$password@127.0.0.1:$port/postgres'"
    ;;
stop)
    target="${2:?usage: tools/postgres.sh stop DIR}"
    dir="$(bindir)" || exit 0
    if [ -f "$target/data/postmaster.pid" ]; then
        as_owner "$dir/pg_ctl" -D "$target/data" -m immediate -w stop >/dev/null || true
    fi
    ;;
*)
    echo "usage: tools/postgres.sh install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
