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
#
# ensure_services first tries REDIS_URL / DATABASE_URL (or the service's
# defaults). Only when one is unreachable does it start a project-local
# instance under $REPO/.local/ (redis-server on 6390.., Postgres on 5440..),
# reusing an instance already started there by an earlier run.
#
# Safe under `set -euo pipefail`; it changes no shell options of its caller.

_SVC_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_SVC_LOCAL="$_SVC_REPO/.local"

_svc_log() { printf '%s\n' "$*" >&2; }
_svc_die() { printf 'error: %s\n' "$*" >&2; return 1; }

# ---------------------------------------------------------------- helpers --

_svc_apt_updated=""

# svc_apt_install PKG... : apt-get install, via sudo when not root.
svc_apt_install() {
    local -a sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            _svc_die "need to install: $* (not root and no sudo; install them yourself)"
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _svc_die "need to install: $* (no apt-get on this system; install them yourself)"
        return 1
    fi
    _svc_log "setup: installing $* with apt-get"
    if [[ -z $_svc_apt_updated ]]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        _svc_apt_updated=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >&2 || return 1
}

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

# ------------------------------------------------------------------ redis --

_svc_redis_ping() {
    local out
    out=$(timeout 5 redis-cli -u "$1" ping 2>/dev/null) || return 1
    [[ $out == PONG ]]
}

_svc_redis_local_ping() {
    local out
    out=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) || return 1
    [[ $out == PONG ]]
}

_svc_ensure_redis() {
    local url=${REDIS_URL:-redis://127.0.0.1:6379}
    local dir="$_SVC_LOCAL/redis" portfile="$_SVC_LOCAL/redis.port"
    local port

    if ! command -v redis-cli >/dev/null 2>&1; then
        svc_apt_install redis-tools || return 1
    fi

    if _svc_redis_ping "$url"; then
        _svc_log "redis: using $url (already running)"
        export REDIS_URL=$url
        return 0
    fi

    # A local instance from an earlier run?
    if [[ -s $portfile ]] && _svc_pid_alive "$dir/redis.pid"; then
        port=$(tr -dc '0-9' <"$portfile")
        if [[ -n $port ]] && _svc_redis_local_ping "$port"; then
            _svc_log "redis: $url not reachable; reusing local instance on 127.0.0.1:$port (.local/redis)"
            export REDIS_URL="redis://127.0.0.1:$port"
            return 0
        fi
    fi

    _svc_log "redis: $url not reachable; starting a local instance"
    if ! command -v redis-server >/dev/null 2>&1; then
        svc_apt_install redis-server || return 1
    fi
    mkdir -p "$dir"
    port=$(_svc_free_port 6390) || return 1
    redis-server --bind 127.0.0.1 --port "$port" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --appendonly yes --appendfsync everysec --dir "$dir" --save "" >&2 || {
        _svc_die "redis-server failed to start; see .local/redis/redis.log"
        return 1
    }
    local i
    for ((i = 0; i < 50; i++)); do
        if _svc_redis_local_ping "$port"; then
            printf '%s\n' "$port" >"$portfile"
            _svc_log "redis: started local instance on 127.0.0.1:$port (.local/redis)"
            export REDIS_URL="redis://127.0.0.1:$port"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    _svc_die "redis-server on port $port did not answer PING"
}

# --------------------------------------------------------------- postgres --

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

# _svc_pg_dbname URL : the database named in URL (default coupon_issuer).
_svc_pg_dbname() {
    local rest=${1#*://} db
    rest=${rest%%\?*}
    db=""
    if [[ $rest == */* ]]; then
        db=${rest#*/}
    fi
    printf '%s\n' "${db:-coupon_issuer}"
}

_svc_pg_ok() {
    PGCONNECT_TIMEOUT=5 timeout 10 psql "$1" -XAtq -c 'select 1' >/dev/null 2>&1
}

# Sets _SVC_PG_BIN to a directory holding initdb, pg_ctl and postgres.
# Prefers the version an existing data directory was made with, else the
# highest /usr/lib/postgresql/*/bin, else whatever is on PATH.
_svc_find_pg_bin() {
    local want="" d best="" v bestv=-1
    if [[ -s "$_SVC_LOCAL/pg/PG_VERSION" ]]; then
        want=$(tr -dc '0-9.' <"$_SVC_LOCAL/pg/PG_VERSION")
        if [[ -x /usr/lib/postgresql/$want/bin/pg_ctl ]]; then
            _SVC_PG_BIN=/usr/lib/postgresql/$want/bin
            return 0
        fi
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
        v=$(basename "$(dirname "$d")")
        v=${v%%.*}
        [[ $v =~ ^[0-9]+$ ]] || continue
        if ((v > bestv)); then
            bestv=$v
            best=$d
        fi
    done
    if [[ -n $best ]]; then
        _SVC_PG_BIN=$best
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        _SVC_PG_BIN=$(dirname "$(command -v pg_ctl)")
        return 0
    fi
    return 1
}

# Sets _SVC_PG_RUN to the command prefix that runs a command as the owner
# of the local cluster: empty when not root, `runuser -u USER --` as root
# (initdb and postgres refuse to run as root).
# Where the local cluster lives (its data, log and socket directory): .local/, unless
# an earlier run had to move it (see _svc_pg_move_home_if_unreachable).
_svc_pg_home() {
    if [[ -s "$_SVC_LOCAL/pg.home" ]]; then
        head -n 1 "$_SVC_LOCAL/pg.home"
    else
        printf '%s\n' "$_SVC_LOCAL"
    fi
}

# As root, the cluster runs as another user, who must be able to enter its home.
# A repo under /root (mode 700 on Debian) is out of its reach: then the cluster
# lives under /var/tmp instead, in a directory named after this repo's path,
# remembered in .local/pg.home.
_svc_pg_move_home_if_unreachable() {
    ((${#_SVC_PG_RUN[@]})) || return 0
    local home
    home=$(_svc_pg_home)
    mkdir -p "$home"
    _svc_pg_as test -x "$home" && return 0
    home="/var/tmp/coupon-issuer-pg-$(printf '%s' "$_SVC_LOCAL" | cksum | cut -d' ' -f1)"
    mkdir -p "$home"
    chown "$_SVC_PG_USER" "$home"
    chmod 700 "$home"
    printf '%s\n' "$home" >"$_SVC_LOCAL/pg.home"
    _svc_log "postgres: user $_SVC_PG_USER cannot enter $_SVC_LOCAL; keeping the local cluster in $home"
}

_svc_pg_runner() {
    _SVC_PG_RUN=()
    _SVC_PG_USER=$(id -un)
    [[ $(id -u) -eq 0 ]] || return 0
    local user pgdata
    pgdata="$(_svc_pg_home)/pg"
    if [[ -d "$pgdata" ]] && [[ $(stat -c %u "$pgdata") -ne 0 ]]; then
        user=$(stat -c %U "$pgdata")
    elif id postgres >/dev/null 2>&1; then
        user=postgres
    else
        user=coupon-pg
        if ! id "$user" >/dev/null 2>&1; then
            _svc_log "postgres: creating system user $user to own the local cluster"
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$user" >&2 || return 1
        fi
    fi
    _SVC_PG_USER=$user
    _SVC_PG_RUN=(runuser -u "$user" --)
}

_svc_pg_as() {
    if ((${#_SVC_PG_RUN[@]})); then
        # From /: the cluster's owner may not be allowed into the current directory.
        (cd / && "${_SVC_PG_RUN[@]}" "$@")
    else
        "$@"
    fi
}

# Directory for the cluster's Unix socket (paths are limited to ~107 bytes).
_svc_pg_sockdir() {
    local d
    d="$(_svc_pg_home)/pg-run"
    if ((${#d} > 90)); then
        d="/tmp/coupon-issuer-pg-$(id -u)-$(printf '%s' "$_SVC_LOCAL" | cksum | cut -d' ' -f1)"
    fi
    printf '%s\n' "$d"
}

_svc_ensure_postgres() {
    local url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/coupon_issuer}
    local data portfile="$_SVC_LOCAL/pg.port" log
    local admin db port sockdir
    data="$(_svc_pg_home)/pg"

    if ! command -v psql >/dev/null 2>&1; then
        svc_apt_install postgresql-client || return 1
    fi

    admin=$(_svc_pg_admin_url "$url")
    db=$(_svc_pg_dbname "$url")
    if _svc_pg_ok "$admin"; then
        _svc_log "postgres: using $url (already running)"
        export DATABASE_URL=$url
        return 0
    fi

    # A local instance from an earlier run?
    if [[ -s $portfile ]] && _svc_pid_alive "$data/postmaster.pid"; then
        port=$(tr -dc '0-9' <"$portfile")
        if [[ -n $port ]] && _svc_pg_ok "postgres://postgres@127.0.0.1:$port/postgres"; then
            _svc_log "postgres: $url not reachable; reusing local instance on 127.0.0.1:$port ($data)"
            export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
            return 0
        fi
    fi

    _svc_log "postgres: $url not reachable; starting a local instance"
    if ! _svc_find_pg_bin; then
        svc_apt_install postgresql postgresql-client || return 1
        _svc_find_pg_bin || {
            _svc_die "postgres: no initdb/pg_ctl found even after installing postgresql"
            return 1
        }
    fi
    mkdir -p "$_SVC_LOCAL"
    _svc_pg_runner || return 1
    _svc_pg_move_home_if_unreachable || return 1
    data="$(_svc_pg_home)/pg"
    log="$(_svc_pg_home)/pg.log"

    sockdir=$(_svc_pg_sockdir)
    mkdir -p "$sockdir"
    [[ -e $log ]] || : >"$log"
    if ((${#_SVC_PG_RUN[@]})); then
        # The cluster's owner must be able to reach and write these.
        if ! _svc_pg_as test -x "$(_svc_pg_home)"; then
            _svc_die "postgres: user $_SVC_PG_USER cannot enter $(_svc_pg_home)"
            return 1
        fi
        chown "$_SVC_PG_USER" "$sockdir" "$log"
    fi

    if [[ ! -s $data/PG_VERSION ]]; then
        mkdir -p "$data"
        chmod 700 "$data"
        if ((${#_SVC_PG_RUN[@]})); then
            chown "$_SVC_PG_USER" "$data"
        fi
        _svc_log "postgres: initdb in $data ($_SVC_PG_BIN, owner $_SVC_PG_USER)"
        if ! _svc_pg_as "$_SVC_PG_BIN/initdb" --auth=trust -U postgres -D "$data" \
            --encoding=UTF8 --locale=C >"$_SVC_LOCAL/pg-initdb.log" 2>&1; then
            tail -n 20 "$_SVC_LOCAL/pg-initdb.log" >&2 || true
            _svc_die "postgres: initdb failed (see .local/pg-initdb.log)"
            return 1
        fi
    fi

    # Reuse the previous port when it is still free.
    port=""
    if [[ -s $portfile ]]; then
        port=$(tr -dc '0-9' <"$portfile")
        if [[ -n $port ]] && ! _svc_port_free "$port"; then
            port=""
        fi
    fi
    if [[ -z $port ]]; then
        port=$(_svc_free_port 5440) || return 1
    fi

    if ! _svc_pg_as "$_SVC_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -k $sockdir -c listen_addresses=127.0.0.1" start >/dev/null; then
        tail -n 20 "$log" >&2 || true
        _svc_die "postgres: pg_ctl start failed (see $log)"
        return 1
    fi
    printf '%s\n' "$port" >"$portfile"
    if ! _svc_pg_ok "postgres://postgres@127.0.0.1:$port/postgres"; then
        tail -n 20 "$log" >&2 || true
        _svc_die "postgres: local instance on port $port does not answer"
        return 1
    fi
    _svc_log "postgres: started local instance on 127.0.0.1:$port ($data)"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
}

# ------------------------------------------------------------- public API --

ensure_services() {
    _svc_ensure_redis || return 1
    _svc_ensure_postgres || return 1
}

stop_local_services() {
    local dir="$_SVC_LOCAL/redis" data pid port stopped=""
    data="$(_svc_pg_home)/pg"

    # Redis: only the process named in our own pid file, and only if it
    # really is a redis-server.
    if _svc_pid_alive "$dir/redis.pid"; then
        pid=$(head -n 1 "$dir/redis.pid" | tr -dc '0-9')
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server; then
            port=$(tr -dc '0-9' 2>/dev/null <"$_SVC_LOCAL/redis.port" || true)
            if [[ -n $port ]] && command -v redis-cli >/dev/null 2>&1; then
                timeout 10 redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || true
            fi
            local i
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                if ((i == 10)); then
                    kill -TERM "$pid" 2>/dev/null || true
                fi
                sleep 0.2
            done
            if kill -0 "$pid" 2>/dev/null; then
                _svc_log "redis: local instance (pid $pid) did not stop"
            else
                _svc_log "redis: stopped local instance${port:+ on 127.0.0.1:$port}"
                stopped=1
            fi
        fi
    fi

    # Postgres: pg_ctl on our own data directory only.
    if _svc_pid_alive "$data/postmaster.pid"; then
        if _svc_find_pg_bin && _svc_pg_runner; then
            if _svc_pg_as "$_SVC_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null; then
                _svc_log "postgres: stopped local instance ($data)"
                stopped=1
            else
                _svc_log "postgres: pg_ctl stop failed for $data"
                return 1
            fi
        else
            _svc_die "postgres: cannot find pg_ctl to stop $data"
            return 1
        fi
    fi

    if [[ -z $stopped ]]; then
        _svc_log "services: no local instances running under .local/"
    fi
    return 0
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
