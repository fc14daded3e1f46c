# shellcheck shell=bash
#
# Redis + Postgres for local development and tests. Source this file, then:
#
#   ensure_services       make sure a Redis and a Postgres are reachable and
#                         export REDIS_URL / DATABASE_URL pointing at them
#   stop_local_services   stop the project-local instances under .local/
#                         (never touches any other Redis/Postgres)
#   svc_apt_install PKG.. install Debian packages (sudo when not root)
#   ensure_chromium       install Debian's chromium when missing (the browser
#                         tests drive pages in it, headless)
#   ensure_server_binaries  install redis-server and Postgres when missing
#                         (the fault tests and the soak start servers of their own)
#
# ensure_services first tries REDIS_URL / DATABASE_URL (or the service's
# defaults). Only when one is unreachable does it start a project-local
# instance under $REPO/.local/ (redis-server on 6390.., Postgres on 5440..),
# reusing an instance already started there by an earlier run.
#
# The work is done once, in Rust, by `cargo xtask services|down|server-binaries|apt-install`
# (crates/xtask), which shares its way of starting servers with the tests'
# (crates/test-support). Building the xtask takes seconds and never builds the
# service. What stays here are the small helpers other scripts use.
#
# Safe under `set -euo pipefail`; it changes no shell options of its caller.

_SVC_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_SVC_LOCAL="$_SVC_REPO/.local"

_svc_log() { printf '%s\n' "$*" >&2; }
_svc_die() { printf 'error: %s\n' "$*" >&2; return 1; }

# _svc_xtask ARGS... : cargo xtask ARGS, run in the repository.
_svc_xtask() {
    if ! command -v cargo >/dev/null 2>&1; then
        _svc_die "cargo not found: install the Rust toolchain (rustup) first"
        return 1
    fi
    (cd "$_SVC_REPO" && cargo xtask "$@")
}

# svc_apt_install PKG... : apt-get install, via sudo when not root.
svc_apt_install() {
    _svc_xtask apt-install "$@"
}

# ---------------------------------------------------------------- helpers --

# _svc_port_free PORT : true when nothing can be reached on 127.0.0.1:PORT
# and we can bind it ourselves.
_svc_port_free() {
    local port=$1
    # Something answers there: taken.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 1
    fi
    # Bind test (perl-base is always present on Debian; skip if absent).
    if command -v perl >/dev/null 2>&1; then
        perl -MIO::Socket::INET -e '
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
                LocalPort => $ARGV[0], Proto => "tcp", Listen => 1, ReuseAddr => 1);
            exit($s ? 0 : 1);' "$port" 2>/dev/null || return 1
    fi
    return 0
}

# _svc_free_port FIRST : print the first free port in FIRST..FIRST+99.
_svc_free_port() {
    local port=$1 last=$(($1 + 99))
    while ((port <= last)); do
        if _svc_port_free "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        port=$((port + 1))
    done
    _svc_die "no free port in $1..$last"
}

# _svc_pid_alive PIDFILE : true when the pid in PIDFILE (first line) runs.
_svc_pid_alive() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 1
    pid=$(head -n 1 "$pidfile" | tr -dc '0-9')
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# _svc_pg_admin_url URL : the same server and user, database "postgres"
# (the target database may not exist yet: the service creates it).
_svc_pg_admin_url() {
    local url=$1 scheme rest query="" authority
    scheme=${url%%://*}
    rest=${url#*://}
    if [[ $rest == *\?* ]]; then
        query="?${rest#*\?}"
        rest=${rest%%\?*}
    fi
    authority=${rest%%/*}
    printf '%s://%s/postgres%s\n' "$scheme" "$authority" "$query"
}

# ------------------------------------------------------------- public API --

ensure_services() {
    local out
    out=$(_svc_xtask services) || return 1
    eval "$out"
    export REDIS_URL DATABASE_URL
}

# stop_local_services : stops the local instances (and, as scripts/down does,
# the local Redis Cluster: `cargo xtask down`).
stop_local_services() {
    _svc_xtask down
}

# ensure_server_binaries : what the tests' own servers need, found as they find it.
ensure_server_binaries() {
    _svc_xtask server-binaries
}

# ensure_chromium : the headless browser tests need Debian's `chromium` (or
# $CHROMIUM), with a font so pages (and screenshots) have text. Installed like
# redis/postgres when missing; the tests fail loudly without it rather than skip.
ensure_chromium() {
    if command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
        return 0
    fi
    svc_apt_install chromium fonts-dejavu-core || return 1
    command -v chromium >/dev/null 2>&1 || _svc_die "chromium: not found even after installing it"
}
