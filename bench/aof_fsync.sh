#!/usr/bin/env bash
# What each AOF setting costs the issue script: redis-benchmark of EVALSHA lua/issue.lua (every
# call a new user) against a throwaway redis-server with no AOF, appendfsync everysec and
# appendfsync always, 3 runs each. Starts its own servers on free ports in temp dirs (the AOF
# goes to $TMPDIR's disk, which is what the fsync cost depends on).
#
#   bench/aof_fsync.sh [clients] [requests]      default 50 100000
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients=${1:-50}
requests=${2:-100000}
now_ms=$(($(date +%s) * 1000))
day=$(date -u +%F)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for mode in no everysec always; do
    dir=$(mktemp -d)
    port=$(free_port)
    if [[ $mode == no ]]; then aof=(--appendonly no); else aof=(--appendonly yes --appendfsync "$mode"); fi
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" "${aof[@]}" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    cli=(redis-cli -p "$port")
    until "${cli[@]}" ping >/dev/null 2>&1; do sleep 0.1; done
    sha=$("${cli[@]}" SCRIPT LOAD "$(cat "$REPO/lua/issue.lua")")
    # An event open all day with a limit never reached, as catalog publishing would write it.
    "${cli[@]}" HSET 'b:{e}:event' daily_limit 1000000000 valid_until_ms $((now_ms + 30 * 86400000)) >/dev/null
    "${cli[@]}" ZADD 'b:{e}:windows' $((now_ms + 86400000)) "$day|$((now_ms - 1000))|$((now_ms + 86400000))|0" >/dev/null
    for run in 1 2 3; do
        rps=$(redis-benchmark -p "$port" -c "$clients" -n "$requests" -r 1000000000 -q \
            EVALSHA "$sha" 3 'b:{e}:event' 'b:{e}:windows' 'b:{e}:stream' 'user:__rand_int__' \
            0190a4f2-0000-7000-8000-000000000000 'b:{e}:' 86400000 |
            tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1)
        echo "appendfsync=$mode run $run: $rps"
    done
    "${cli[@]}" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$dir"
done
