#!/usr/bin/env bash
# Passthrough overhead on one machine, in one run: a fast upstream (nginx returning a small
# static body) reached (a) directly, (b) through nginx proxy_pass with upstream keepalive,
# (c) through logout-gateway, and (d) through a bare pingora proxy with no hooks
# (examples/bare_proxy.rs: the same pingora, allocator and runtime) as the floor any pingora-based
# proxy starts from. Rounds are interleaved; the median of ROUNDS is reported.
#
# Pinning: the load generator (wrk) runs on CPU 0; the upstream and the proxy under test share
# CPU 1 (on a 2-core machine). Every target therefore gets the same single core for "server
# work", and CPU per request is measured from /proc for the proxy process alone.
#
# Memory: resident set size (VmRSS) of the gateway, the bare pingora proxy and nginx-as-proxy
# (master + worker): idle after the rounds; with 1,000 idle keep-alive connections open (each has
# had one answer, bench/idle_conns.py); and the highest of samples taken while wrk keeps 1,000
# connections busy.
#
# Usage: bench/passthrough.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx
need_pkg wrk wrk
need_pkg cmake cmake
ROUNDS=${1:-5}; SECS=${2:-5}; CONNS=${3:-50}
cargo build --release --locked -q
# Separately: building an example turns on the dev-dependency features (see Cargo.toml).
cargo build --release --locked -q --example bare_proxy
BIN=target/release/logout-gateway
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
. bench/lib.sh
. bench/configs.sh
UP=$(free_port); NGX=$(free_port); GW=$(free_port); ADM=$(free_port); BARE=$(free_port)

# Two nginx processes: the upstream, and nginx as the proxy under test, so each one's CPU and
# memory are its own.
nginx_conf() { # NAME SERVER-BLOCK
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
events { worker_connections 4096; }
http { access_log off; $2 }
NGINX
}
nginx_conf upstream "server { listen 127.0.0.1:$UP; location / { return 200 \"hello from the upstream\\n\"; } }"
nginx_conf proxy "upstream origin { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\";
                 proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto http;
                 proxy_set_header X-Forwarded-Host \$host; }
  }"
taskset -c "$SRV_CPU" nginx -c "$WORK/upstream/nginx.conf" -p "$WORK/upstream" &
taskset -c "$SRV_CPU" nginx -c "$WORK/proxy/nginx.conf" -p "$WORK/proxy" &

copy_templates "$WORK"
# The gateway and the bare proxy, each with pingora's work-stealing runtime (the default) and with
# a single-threaded runtime per worker thread (server.work_stealing: false; bare_proxy's
# `nosteal`), so the runtime choice is measured in the same run. The bare proxy gets the gateway's allocator setting (main.rs:
# mimalloc commits arenas lazily) through mimalloc's environment variable.
GW_PT=$(free_port); ADM_PT=$(free_port); BARE_PT=$(free_port)
config_passthrough "$GW" "$ADM" "$UP" > "$WORK/proxy.yaml"
config_passthrough "$GW_PT" "$ADM_PT" "$UP" false > "$WORK/proxy-pt.yaml"
taskset -c "$SRV_CPU" "$BIN" run --config "$WORK/proxy.yaml" 2> "$WORK/gateway.log" &
GW_PID=$!
taskset -c "$SRV_CPU" "$BIN" run --config "$WORK/proxy-pt.yaml" 2> "$WORK/gateway-pt.log" &
GW_PT_PID=$!
MIMALLOC_ARENA_EAGER_COMMIT=0 taskset -c "$SRV_CPU" target/release/examples/bare_proxy "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 steal 2> "$WORK/bare.log" &
BARE_PID=$!
MIMALLOC_ARENA_EAGER_COMMIT=0 taskset -c "$SRV_CPU" target/release/examples/bare_proxy "127.0.0.1:$BARE_PT" "127.0.0.1:$UP" 1 nosteal 2> "$WORK/bare-pt.log" &
BARE_PT_PID=$!
for p in $UP $NGX $GW $BARE $GW_PT $BARE_PT; do wait_http "http://127.0.0.1:$p/"; done
# The proxy nginx's worker: the child of its master.
NGX_MASTER=$(cat "$WORK/proxy/nginx.pid")
NGX_PID=$(pgrep -P "$NGX_MASTER" | head -1)

# A bearer token the gateway hashes and looks up in its revocation set on every request.
BEARER="Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLW9mLWEtYmVuY2gtdG9rZW4"
# name port pid bearer(0/1)
TARGETS="direct:$UP:-:0 nginx:$NGX:$NGX_PID:0 pingora:$BARE:$BARE_PID:0 gateway:$GW:$GW_PID:0
  pingora+bearer:$BARE:$BARE_PID:1 gateway+bearer:$GW:$GW_PID:1
  pingora-pt:$BARE_PT:$BARE_PT_PID:0 gateway-pt:$GW_PT:$GW_PT_PID:0"
run_wrk() { # URL BEARER -> "rps p50_ms p99_ms requests"
  if [ "$2" = 1 ]; then
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "$BEARER" "$1" > "$WORK/wrk.out"
  else
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" > "$WORK/wrk.out"
  fi
  wrk_summary "$WORK/wrk.out"
}
declare -A RES
for r in $(seq "$ROUNDS"); do
  for spec in $TARGETS; do
    IFS=: read -r t port pid bearer <<<"$spec"
    t0=0; [ "$pid" != - ] && t0=$(cpu_ticks "$pid")
    read -r rps p50 p99 n < <(run_wrk "http://127.0.0.1:$port/" "$bearer")
    cpu_us="-"
    [ "$pid" != - ] && cpu_us=$(cpu_us_per "$t0" "$(cpu_ticks "$pid")" "$n")
    RES[$t]+="$rps $p50 $p99 $cpu_us;"
    echo "round $r $t: ${rps} req/s p50 ${p50} ms p99 ${p99} ms cpu/req ${cpu_us} us" >&2
  done
done
col() { tr ';' '\n' <<<"${RES[$1]}" | grep -v '^$' | awk -v c="$2" '{print $c}' | median; }
# Memory: idle, then under 1,000 concurrent connections (wrk keeps them all busy).
ulimit -n 65536 2>/dev/null || true
NGX_PIDS="$NGX_MASTER $NGX_PID"
mem_under_load() { # URL PIDS... -> highest summed RSS (KiB) while 1,000 connections are open
  local url=$1; shift
  taskset -c 0 wrk -t1 -c1000 -d6s "$url" > "$WORK/wrk-mem.out" &
  local w=$! peak=0 v
  for _ in 1 2 3 4 5; do sleep 1; v=$(rss_kib "$@"); [ "$v" -gt "$peak" ] && peak=$v; done
  wait $w
  echo "$peak"
}
mem_idle_conns() { # PORT PIDS... -> summed RSS (KiB) while 1,000 idle keep-alive connections are open
  local port=$1 line v; shift
  coproc IC { taskset -c 0 python3 bench/idle_conns.py 127.0.0.1 "$port" 1000; }
  read -r line <&"${IC[0]}" || true
  [ "$line" = "open 1000" ] || { echo "idle connections to $port: ${line:-none}" >&2; return 1; }
  v=$(rss_kib "$@")
  eval "exec ${IC[1]}>&-"
  wait "$IC_PID" || true
  echo "$v"
}
sleep 1
GW_IDLE=$(rss_kib "$GW_PID"); NGX_IDLE=$(rss_kib $NGX_PIDS); BARE_IDLE=$(rss_kib "$BARE_PID")
GW_CONNS=$(mem_idle_conns "$GW" "$GW_PID")
NGX_CONNS=$(mem_idle_conns "$NGX" $NGX_PIDS)
BARE_CONNS=$(mem_idle_conns "$BARE" "$BARE_PID")
GW_LOAD=$(mem_under_load "http://127.0.0.1:$GW/" "$GW_PID")
NGX_LOAD=$(mem_under_load "http://127.0.0.1:$NGX/" $NGX_PIDS)
BARE_LOAD=$(mem_under_load "http://127.0.0.1:$BARE/" "$BARE_PID")
echo "memory KiB: gateway idle $GW_IDLE, 1000 idle conns $GW_CONNS, 1000 busy $GW_LOAD; nginx idle $NGX_IDLE, $NGX_CONNS, $NGX_LOAD; pingora idle $BARE_IDLE, $BARE_CONNS, $BARE_LOAD" >&2

OUT=bench/results/passthrough.md
{
  echo "# Passthrough benchmark"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c$CONNS -d${SECS}s, median of $ROUNDS interleaved rounds."
  echo "wrk pinned to CPU 0; upstream nginx and the proxy under test share CPU $SRV_CPU. The proxy runs 1 worker thread."
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)."
  echo "CPU/request is the proxy process's user+system time divided by the requests it served."
  echo
  echo "| target | requests/s | p50 ms | p99 ms | proxy CPU µs/request |"
  echo "|---|---:|---:|---:|---:|"
  for spec in $TARGETS; do
    t=${spec%%:*}
    echo "| $t | $(col "$t" 1) | $(col "$t" 2) | $(col "$t" 3) | $( [ "$t" = direct ] && echo - || col "$t" 4) |"
  done
  r() { python3 -c "print(f'{$1/$2:.2f}')"; }
  echo
  echo "\`+bearer\`: every request carries \`Authorization: Bearer\` (the gateway hashes it and looks it up);"
  echo "\`-pt\`: a single-threaded runtime per worker thread (\`server.work_stealing: false\`) instead of pingora's work-stealing runtime."
  echo
  echo "| ratio (medians) | requests/s | CPU per request |"
  echo "|---|---:|---:|"
  echo "| gateway / bare pingora, no credential | $(r "$(col gateway 1)" "$(col pingora 1)") | $(r "$(col gateway 4)" "$(col pingora 4)") |"
  echo "| gateway / bare pingora, bearer token | $(r "$(col gateway+bearer 1)" "$(col pingora+bearer 1)") | $(r "$(col gateway+bearer 4)" "$(col pingora+bearer 4)") |"
  echo "| gateway / nginx proxy_pass | $(r "$(col gateway 1)" "$(col nginx 1)") | $(r "$(col gateway 4)" "$(col nginx 4)") |"
  echo "| bare pingora / nginx proxy_pass | $(r "$(col pingora 1)" "$(col nginx 1)") | $(r "$(col pingora 4)" "$(col nginx 4)") |"
  echo "| per-thread runtimes / work stealing, gateway | $(r "$(col gateway-pt 1)" "$(col gateway 1)") | $(r "$(col gateway-pt 4)" "$(col gateway 4)") |"
  echo "| per-thread runtimes / work stealing, bare pingora | $(r "$(col pingora-pt 1)" "$(col pingora 1)") | $(r "$(col pingora-pt 4)" "$(col pingora 4)") |"
  echo
  mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
  echo "| resident memory (MiB) | idle | 1,000 idle keep-alive connections | 1,000 busy connections |"
  echo "|---|---:|---:|---:|"
  echo "| nginx proxy (master + worker) | $(mib "$NGX_IDLE") | $(mib "$NGX_CONNS") | $(mib "$NGX_LOAD") |"
  echo "| bare pingora proxy | $(mib "$BARE_IDLE") | $(mib "$BARE_CONNS") | $(mib "$BARE_LOAD") |"
  echo "| gateway | $(mib "$GW_IDLE") | $(mib "$GW_CONNS") | $(mib "$GW_LOAD") |"
  echo
  echo "Gateway minus nginx with 1,000 idle connections: $(mib $(( GW_CONNS - NGX_CONNS ))) MiB; per idle connection (gateway, above its idle): $(( (GW_CONNS - GW_IDLE) / 1000 )) KiB."
} > "$OUT"
# The same figures for the plot.
python3 - > bench/results/passthrough.json <<PY
import json
rows = {}
for t, cells in (("direct", "${RES[direct]}"), ("nginx", "${RES[nginx]}"), ("pingora", "${RES[pingora]}"), ("gateway", "${RES[gateway]}"),
                 ("pingora+bearer", "${RES[pingora+bearer]}"), ("gateway+bearer", "${RES[gateway+bearer]}"),
                 ("pingora-pt", "${RES[pingora-pt]}"), ("gateway-pt", "${RES[gateway-pt]}")):
    rows[t] = [c.split() for c in cells.split(";") if c.strip()]
print(json.dumps({"rounds": rows, "memory_kib": {"nginx": [$NGX_IDLE, $NGX_CONNS, $NGX_LOAD], "pingora": [$BARE_IDLE, $BARE_CONNS, $BARE_LOAD], "gateway": [$GW_IDLE, $GW_CONNS, $GW_LOAD]}}, indent=1))
PY
cat "$OUT"
