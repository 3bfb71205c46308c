#!/usr/bin/env bash
# Passthrough overhead on one machine, in one run: a fast upstream (nginx returning a small
# static body) reached (a) directly, (b) through nginx proxy_pass with upstream keepalive,
# (c) through logout-gateway. Rounds are interleaved; the median of ROUNDS is reported.
#
# Pinning: the load generator (wrk) runs on CPU 0; the upstream and the proxy under test share
# CPU 1 (on a 2-core machine). Every target therefore gets the same single core for "server
# work", and CPU per request is measured from /proc for the proxy process alone.
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
BIN=target/release/logout-gateway
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); NGX=$(free_port); GW=$(free_port); ADM=$(free_port)
NCORE=$(nproc); SRV_CPU=$(( NCORE > 1 ? 1 : 0 ))

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream origin { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$UP; location / { return 200 "hello from the upstream\n"; } }
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto http;
                 proxy_set_header X-Forwarded-Host \$host; }
  }
}
NGINX
taskset -c "$SRV_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" & 

mkdir -p "$WORK/templates" && cp -r templates/. "$WORK/templates/"
cat > "$WORK/proxy.yaml" <<YAML
listen: "127.0.0.1:$GW"
admin: { listen: "127.0.0.1:$ADM" }
upstream: { url: "http://127.0.0.1:$UP", idle_timeout: 60s }
issuer: "http://127.0.0.1:$GW"
session_store: { backend: memory }
templates_dir: templates
log: { level: warn }
server: { threads: 1, grace_period: 1s, shutdown_timeout: 1s }
YAML
taskset -c "$SRV_CPU" "$BIN" run --config "$WORK/proxy.yaml" 2> "$WORK/gateway.log" &
GW_PID=$!
for p in $UP $NGX $GW; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.1; done
done
NGX_PID=$(pgrep -f "nginx: worker process" -n || true)

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run_wrk() { # URL -> "rps p50_ms p99_ms"
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" > "$WORK/wrk.out"
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def lat(p):
    v, u = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)$", text, re.M).groups()
    return float(v) * unit[u]
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
print(f"{rps:.0f} {lat(50):.3f} {lat(99):.3f}")
PY
}
declare -A RES
for r in $(seq "$ROUNDS"); do
  for t in direct nginx gateway; do
    case $t in direct) url="http://127.0.0.1:$UP/";; nginx) url="http://127.0.0.1:$NGX/";; gateway) url="http://127.0.0.1:$GW/";; esac
    pid=""; [ $t = gateway ] && pid=$GW_PID; [ $t = nginx ] && pid=$NGX_PID
    t0=0; [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    read -r rps p50 p99 < <(run_wrk "$url")
    cpu_us="-"
    if [ -n "$pid" ]; then
      t1=$(cpu_ticks "$pid"); tck=$(getconf CLK_TCK)
      cpu_us=$(python3 -c "print(f'{($t1-$t0)/$tck*1e6/($rps*$SECS):.1f}')")
    fi
    RES[$t]+="$rps $p50 $p99 $cpu_us;"
    echo "round $r $t: ${rps} req/s p50 ${p50} ms p99 ${p99} ms cpu/req ${cpu_us} us" >&2
  done
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { tr ';' '\n' <<<"${RES[$1]}" | grep -v '^$' | awk -v c="$2" '{print $c}' | median; }
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
  for t in direct nginx gateway; do
    echo "| $t | $(col $t 1) | $(col $t 2) | $(col $t 3) | $( [ $t = direct ] && echo - || col $t 4) |"
  done
  g=$(col gateway 1); n=$(col nginx 1); d=$(col direct 1)
  echo
  echo "Ratios (requests/s): gateway/nginx = $(python3 -c "print(f'{$g/$n:.2f}')"), gateway/direct = $(python3 -c "print(f'{$g/$d:.2f}')")."
} > "$OUT"
cat "$OUT"
