#!/usr/bin/env bash
# Instructions per issue request, counted by callgrind: the release service, and the bench's
# thin reference server (crates/load-tools/src/bin/thin.rs) doing the same issue path, on one Redis and one
# event. Wall-clock CPU wobbles on a shared machine; instruction counts repeat run to run, so
# this is what judges a change to the hot path (see docs/performance.md).
#
#   bash bench/callgrind.sh              N=2000 requests over CONNS=8 keep-alive connections
#   N=5000 CONNS=16 bash bench/callgrind.sh
#   ONLY=service bash bench/callgrind.sh  (or ONLY=thin); LOG=info for the service at the default level
#
# Needs `cargo build --release -p coupon-issuer --bin coupon-issuer` and
# `cargo build --release -p coupon-load-tools --bin thin`, valgrind, python3, and the
# Postgres of scripts/lib/services.sh. Leaves the callgrind files in target/callgrind/ for
# `callgrind_annotate --inclusive=yes target/callgrind/service.out | head -60`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N=${N:-2000}
CONNS=${CONNS:-8}
WARMUP=${WARMUP:-300}
ONLY=${ONLY:-}
BIN=${BIN:-target/release/coupon-issuer}
THIN=${THIN:-target/release/thin}
OUT=target/callgrind
mkdir -p "$OUT"
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}

w=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$w"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 600); do curl -sf "127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --maxclients 20000 >"$w/redis.log" 2>&1 &
pids+=($!)
sleep 0.5
db="callgrind_$RANDOM$RANDOM"

# The service's callgrind, or a plain service that creates the event and stores the coupons.
serve() { # $1 port, $2.. the command prefix (empty or valgrind ...)
    local p=$1
    shift
    LISTEN_ADDR=127.0.0.1:$p REDIS_URL=redis://127.0.0.1:$RP DATABASE_URL=$PG/$db ADMIN_TOKEN=cg RUST_LOG=${LOG:-warn} \
        "$@" "$BIN" serve >"$w/svc-$p.log" 2>&1 &
    pids+=($!)
}
event() {
    curl -s -X POST "127.0.0.1:$1/v1/events" -H "Authorization: Bearer cg" -H 'Content-Type: application/json' \
        -d "{\"name\":\"cg\",\"timezone\":\"UTC\",\"starts_on\":\"$(date -u -d yesterday +%F)\",\"ends_on\":\"$(date -u -d tomorrow +%F)\",\"daily_open\":\"00:00\",\"daily_close\":\"24:00\",\"daily_limit\":100000000,\"valid_days_after_end\":30,\"discount\":{\"kind\":\"percent\",\"value\":10}}" |
        python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])'
}
drive() { python3 "$REPO/bench/drive.py" "$1" "$E" "$2" "$CONNS" "$3"; }
drained() { # waits until the writer has stored every coupon of the event
    for _ in $(seq 600); do
        [ "$(redis-cli -p "$RP" xlen "coupon:{$E}:stream")" = 0 ] && return 0
        sleep 0.2
    done
}
# Total instructions of a dump (every thread), divided by N.
per_request() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print int($1/'"$N"')}'; }
measure() { # $1 name, $2 port, $3 pid of the valgrind process
    drive "$2" "$WARMUP" "warm-$1-$RANDOM" 2>/dev/null
    drained
    callgrind_control -z "$3" >/dev/null
    drive "$2" "$N" "$1-$RANDOM"
    drained
    sleep 1
    rm -f "$OUT/$1${SUFFIX:-}.out"
    callgrind_control -d "$3" >/dev/null
    sleep 1
    local dump
    dump=$(ls -t "$w/$1".cg.*.* 2>/dev/null | head -1)
    cp "$dump" "$OUT/$1${SUFFIX:-}.out"
    echo "$1: $(per_request "$OUT/$1${SUFFIX:-}.out") instructions per request (N=$N, $CONNS connections)"
}

HP=$(port)
if [ "$ONLY" != thin ]; then
    serve "$HP" valgrind --tool=callgrind --callgrind-out-file="$w/service.cg.%p"
    SVC=${pids[-1]}
else
    serve "$HP"
fi
wait_http "$HP" || { echo "service not ready"; cat "$w/svc-$HP.log"; exit 2; }
E=$(event "$HP")
[ -n "$E" ] || { echo "no event"; exit 2; }
[ "$ONLY" = thin ] || measure service "$HP" "$SVC"

if [ "$ONLY" != service ]; then
    if [ "$ONLY" != thin ]; then
        # The thin server's coupons are stored by a service that is not being measured.
        kill "$SVC" 2>/dev/null || true
        sleep 2
        HP=$(port)
        serve "$HP"
        wait_http "$HP"
    fi
    TP=$(port)
    LISTEN=127.0.0.1:$TP REDIS=redis://127.0.0.1:$RP REDIS_URL=redis://127.0.0.1:$RP SCRIPT=$REPO/lua/issue.lua \
        valgrind --tool=callgrind --callgrind-out-file="$w/thin.cg.%p" "$THIN" >"$w/thin.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 300); do curl -s -o /dev/null "127.0.0.1:$TP/" && break; sleep 0.2; done
    measure thin "$TP" "${pids[-1]}"
fi
