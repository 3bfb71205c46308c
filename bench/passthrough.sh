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
# Memory: resident set size (VmRSS) of the gateway and of nginx-as-proxy (master + worker), idle
# after the rounds, and the highest of samples taken while wrk holds 1,000 connections open.
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
config_passthrough "$GW" "$ADM" "$UP" > "$WORK/proxy.yaml"
taskset -c "$SRV_CPU" "$BIN" run --config "$WORK/proxy.yaml" 2> "$WORK/gateway.log" &
GW_PID=$!
taskset -c "$SRV_CPU" target/release/examples/bare_proxy "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 2> "$WORK/bare.log" &
BARE_PID=$!
for p in $UP $NGX $GW $BARE; do wait_http "http://127.0.0.1:$p/"; done
# The proxy nginx's worker: the child of its master.
NGX_MASTER=$(cat "$WORK/proxy/nginx.pid")
NGX_PID=$(pgrep -P "$NGX_MASTER" | head -1)

run_wrk() { # URL -> "rps p50_ms p99_ms requests"
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" > "$WORK/wrk.out"
  wrk_summary "$WORK/wrk.out"
}
declare -A RES
for r in $(seq "$ROUNDS"); do
  for t in direct nginx pingora gateway; do
    case $t in direct) url="http://127.0.0.1:$UP/";; nginx) url="http://127.0.0.1:$NGX/";; pingora) url="http://127.0.0.1:$BARE/";; gateway) url="http://127.0.0.1:$GW/";; esac
    pid=""; [ $t = gateway ] && pid=$GW_PID; [ $t = nginx ] && pid=$NGX_PID; [ $t = pingora ] && pid=$BARE_PID
    t0=0; [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    read -r rps p50 p99 n < <(run_wrk "$url")
    cpu_us="-"
    [ -n "$pid" ] && cpu_us=$(cpu_us_per "$t0" "$(cpu_ticks "$pid")" "$n")
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
sleep 1
GW_IDLE=$(rss_kib "$GW_PID"); NGX_IDLE=$(rss_kib $NGX_PIDS)
GW_LOAD=$(mem_under_load "http://127.0.0.1:$GW/" "$GW_PID")
NGX_LOAD=$(mem_under_load "http://127.0.0.1:$NGX/" $NGX_PIDS)
echo "memory KiB: gateway idle $GW_IDLE, 1000 conns $GW_LOAD; nginx idle $NGX_IDLE, 1000 conns $NGX_LOAD" >&2

OUT=bench/results/passthrough.md
{
  echo "# Passthrough benchmark"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c$CONNS -d${SECS}s, median of $ROUNDS interleaved rounds."
  echo "wrk pinned to CPU 0; upstream nginx and the proxy under test share CPU $SRV_CPU. The proxy runs 1 worker thread."
  echo "CPU/request is the proxy process's user+system time divided by the requests it served."
  echo
  echo "| target | requests/s | p50 ms | p99 ms | proxy CPU µs/request |"
  echo "|---|---:|---:|---:|---:|"
  for t in direct nginx pingora gateway; do
    echo "| $t | $(col $t 1) | $(col $t 2) | $(col $t 3) | $( [ $t = direct ] && echo - || col $t 4) |"
  done
  g=$(col gateway 1); n=$(col nginx 1); d=$(col direct 1); b=$(col pingora 1)
  echo
  echo "Ratios (requests/s): gateway/nginx = $(python3 -c "print(f'{$g/$n:.2f}')"), gateway/direct = $(python3 -c "print(f'{$g/$d:.2f}')"), gateway/pingora = $(python3 -c "print(f'{$g/$b:.2f}')"), pingora/nginx = $(python3 -c "print(f'{$b/$n:.2f}')")."
  echo
  echo "| resident memory (MiB) | idle | 1,000 concurrent connections |"
  echo "|---|---:|---:|"
  echo "| nginx proxy (master + worker) | $(( NGX_IDLE / 1024 )) | $(( NGX_LOAD / 1024 )) |"
  echo "| gateway | $(( GW_IDLE / 1024 )) | $(( GW_LOAD / 1024 )) |"
} > "$OUT"
# The same figures for the plot.
python3 - > bench/results/passthrough.json <<PY
import json
rows = {}
for t, cells in (("direct", "${RES[direct]}"), ("nginx", "${RES[nginx]}"), ("pingora", "${RES[pingora]}"), ("gateway", "${RES[gateway]}")):
    rows[t] = [c.split() for c in cells.split(";") if c.strip()]
print(json.dumps({"rounds": rows, "memory_kib": {"nginx": [$NGX_IDLE, $NGX_LOAD], "gateway": [$GW_IDLE, $GW_LOAD]}}, indent=1))
PY
cat "$OUT"
