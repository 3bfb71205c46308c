#!/usr/bin/env bash
# Instructions per request, a figure machine load does not move: the bare pingora proxy
# (examples/bare_proxy.rs, the floor) and the gateway, each under valgrind's callgrind, for
# requests without a credential and with a bearer token. Instrumentation is on for the measured
# part only (after a warm-up), and each part is dumped on its own, so start-up, warm-up and
# shutdown are not counted. wrk runs on CPU 0, the proxy and the upstream nginx on CPU 1.
#
# Usage: bench/instructions.sh [SECONDS] [CONNECTIONS]; results in bench/results/instructions.md
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx; need_pkg wrk wrk; need_pkg valgrind valgrind; need_pkg cmake cmake
SECS=${1:-5}; CONNS=${2:-10}
cargo build --release --locked -q --bin logout-gateway
cargo build --release --locked -q --example bare_proxy
BIN=target/release/logout-gateway
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
. bench/lib.sh
. bench/configs.sh
UP=$(free_port)
mkdir -p "$WORK/up"
cat > "$WORK/up/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log warn;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "hello from the upstream\n"; } } }
NGINX
taskset -c "$SRV_CPU" nginx -c "$WORK/up/nginx.conf" -p "$WORK/up" &
wait_http "http://127.0.0.1:$UP/"
copy_templates "$WORK"
BEARER="Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLW9mLWEtYmVuY2gtdG9rZW4"

# Total instructions (Ir) of one callgrind dump file.
ir() { awk '/^totals:/ {print $2; exit}' "$1"; }

measure() { # NAME PORT COMMAND... ; prints "NAME plain_ir_per_req bearer_ir_per_req"
  local name=$1 port=$2; shift 2
  local out="$WORK/cg.$name"
  taskset -c "$SRV_CPU" valgrind -q --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$out" "$@" 2> "$WORK/$name.log" &
  local pid=$!
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" > /dev/null
  local row="$name" part n dump=0
  for part in plain bearer; do
    dump=$((dump + 1))  # callgrind numbers its dumps: $out.1, $out.2
    local hdr=(); [ "$part" = bearer ] && hdr=(-H "$BEARER")
    callgrind_control -i on "$pid" > /dev/null 2>&1
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$port/" > "$WORK/wrk.out"
    callgrind_control -i off "$pid" > /dev/null 2>&1
    callgrind_control -d "$part" "$pid" > /dev/null 2>&1
    n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/wrk.out")
    row="$row $(( $(ir "$out.$dump") / n ))"
    grep -q "Non-2xx" "$WORK/wrk.out" && { echo "$name $part: answers other than 2xx" >&2; exit 1; }
  done
  # The dumps are written: no graceful shutdown needed (it is slow under valgrind).
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  echo "$row"
}

GW=$(free_port); ADM=$(free_port); BARE=$(free_port)
config_passthrough "$GW" "$ADM" "$UP" > "$WORK/proxy.yaml"
rows=$(
  MIMALLOC_ARENA_EAGER_COMMIT=0 measure bare "$BARE" target/release/examples/bare_proxy "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 steal
  measure gateway "$GW" "$BIN" run --config "$WORK/proxy.yaml"
)
echo "$rows" >&2
python3 - "$SECS" "$CONNS" > bench/results/instructions.md <<PY
import datetime, sys
secs, conns = sys.argv[1:3]
rows = {r.split()[0]: list(map(int, r.split()[1:])) for r in """$rows""".strip().splitlines()}
b, g = rows["bare"], rows["gateway"]
print("# Instructions per request\n")
print(f"{datetime.date.today()}, valgrind callgrind, wrk -t1 -c{conns} -d{secs}s per part after a 2 s warm-up;")
print("instructions of the proxy process (all threads) divided by the requests wrk completed.\n")
print("| process | no credential | bearer token |")
print("|---|---:|---:|")
print(f"| bare pingora proxy | {b[0]:,} | {b[1]:,} |")
print(f"| gateway | {g[0]:,} | {g[1]:,} |")
print(f"| gateway / bare pingora | {g[0] / b[0]:.2f} | {g[1] / b[1]:.2f} |")
PY
cat bench/results/instructions.md
