#!/usr/bin/env bash
# What the per-request credential check costs on passthrough, against the gateway as it was
# before enforcement by credential (BEFORE, a git revision; default: 9f041f5, the last commit
# that checked only exact endpoint paths), in one run on one machine.
#
# Both binaries run side by side (memory store, one worker thread, pinned to the server CPU),
# in front of nginx answering 200 to anything. Each is loaded in turn with five kinds of
# request, rounds interleaved:
#   plain   GET /api/x                                   (no credential at all)
#   bearer  GET /api/x, Authorization: Bearer <token>    (hashed, looked up in the revocation set)
#   query   GET /api/x?access_token=<token>
#   cookie  GET /api/x, Cookie: op_session=<v>; theme=dark
#   form    POST /token, a refresh_token grant form body  (body read, checked, replayed upstream)
# and the proxy's CPU per request is measured from /proc. Reported: medians, and the ratios that
# matter: now/before for each kind, and each kind/plain for the current binary. Then the check
# alone, in process (examples/credential_cost.rs), since whole-request CPU is noisier than it.
#
# Usage: bench/credentials.sh [ROUNDS] [SECONDS] [CONNECTIONS]   (env BEFORE=<rev>)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx
need_pkg wrk wrk
need_pkg cmake cmake
ROUNDS=${1:-5}; SECS=${2:-5}; CONNS=${3:-50}
BEFORE=${BEFORE:-9f041f5}
cargo build --release --locked -q
cargo build --release --locked -q --example credential_cost
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; git worktree remove --force target/bench-before/src 2>/dev/null || true; rm -rf "$WORK"' EXIT
. bench/lib.sh
build_before "$BEFORE"
. bench/configs.sh
UP=$(free_port)

mkdir -p "$WORK/upstream"
cat > "$WORK/upstream/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "hello from the upstream\n"; } } }
NGINX
taskset -c "$SRV_CPU" nginx -c "$WORK/upstream/nginx.conf" -p "$WORK/upstream" &

copy_templates "$WORK"
declare -A PORT PID
start() { # NAME BINARY
  local port adm
  port=$(free_port); adm=$(free_port)
  config_credentials "$port" "$adm" "$UP" > "$WORK/$1.yaml"
  taskset -c "$SRV_CPU" "$2" run --config "$WORK/$1.yaml" 2> "$WORK/$1.log" &
  PID[$1]=$!; PORT[$1]=$port
  wait_http "http://127.0.0.1:$port/"
}
start before "$BEFORE_BIN"
start now target/release/logout-gateway
wait_http "http://127.0.0.1:$UP/"

TOKEN=eyJhbGciOiJSUzI1NiJ9.c2Vzc2lvbi10b2tlbi1mb3ItYmVuY2htYXJr.c2lnbmF0dXJlLXBhcnQtb2YtYS10b2tlbg
for kind in plain bearer query cookie form; do
  case $kind in
    plain)  lua='wrk.path = "/api/x"' ;;
    bearer) lua="wrk.path = \"/api/x\"; wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\"" ;;
    query)  lua="wrk.path = \"/api/x?access_token=$TOKEN\"" ;;
    cookie) lua="wrk.path = \"/api/x\"; wrk.headers[\"Cookie\"] = \"op_session=$TOKEN; theme=dark\"" ;;
    form)   lua="wrk.method = \"POST\"; wrk.path = \"/token\"; wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"; wrk.body = \"grant_type=refresh_token&refresh_token=$TOKEN&client_id=rp\"" ;;
  esac
  echo "$lua" > "$WORK/$kind.lua"
done

declare -A RES
for r in $(seq "$ROUNDS"); do
  for kind in plain bearer query cookie form; do
    for bin in before now; do
      t0=$(cpu_ticks "${PID[$bin]}")
      taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/$kind.lua" "http://127.0.0.1:${PORT[$bin]}" > "$WORK/wrk.out"
      read -r rps p50 p99 n < <(wrk_summary "$WORK/wrk.out")
      non2xx=$(awk '/Non-2xx/{print $NF}' "$WORK/wrk.out")
      [ -z "$non2xx" ] || { echo "$bin $kind: $non2xx non-2xx answers; the benchmark measures passthrough" >&2; exit 1; }
      cpu=$(cpu_us_per "$t0" "$(cpu_ticks "${PID[$bin]}")" "$n")
      RES[$bin.$kind]+="$rps $p50 $p99 $cpu;"
      echo "round $r $bin $kind: $rps req/s p50 $p50 ms p99 $p99 ms cpu/req $cpu us" >&2
    done
  done
done
kill "${PID[before]}" "${PID[now]}" 2>/dev/null || true
taskset -c "$SRV_CPU" cargo run --release --locked -q --example credential_cost 2000000 > "$WORK/cost.txt"
cat "$WORK/cost.txt" >&2
col() { tr ';' '\n' <<<"${RES[$1]}" | grep -v '^$' | awk -v c="$2" '{print $c}' | median; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

OUT=bench/results/credentials.md
{
  echo "# Credential check on passthrough"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c$CONNS -d${SECS}s, median of $ROUNDS interleaved rounds;"
  echo "\`before\` is $BEFORE (exact endpoint paths only), \`now\` is $(git rev-parse --short HEAD)."
  echo "Each proxy runs 1 worker thread on CPU $SRV_CPU with the upstream nginx; wrk on CPU 0."
  echo
  echo "| request | before req/s | now req/s | before CPU µs/req | now CPU µs/req | now/before req/s | now/before CPU |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for kind in plain bearer query cookie form; do
    b=$(col before.$kind 1); n=$(col now.$kind 1); bc=$(col before.$kind 4); nc=$(col now.$kind 4)
    echo "| $kind | $b | $n | $bc | $nc | $(ratio "$n" "$b") | $(ratio "$nc" "$bc") |"
  done
  echo
  p=$(col now.plain 4)
  echo "Whole requests, current binary, CPU per request kind/plain:"
  echo "bearer $(ratio "$(col now.bearer 4)" "$p"), query $(ratio "$(col now.query 4)" "$p"), cookie $(ratio "$(col now.cookie 4)" "$p"), form $(ratio "$(col now.form 4)" "$p")."
  echo "(On a shared 2-core VM whole-request CPU varies by ±15 % between rounds; the in-process figures below isolate the check.)"
  echo
  echo 'The check alone, in process (`examples/credential_cost.rs`: find, SHA-256, verdict against a set of one million revoked credentials):'
  echo
  echo "| request | ns per request | share of the plain request's CPU |"
  echo "|---|---:|---:|"
  while read -r name ns; do
    echo "| $name | $ns | $(python3 -c "print(f'{$ns/1000/$p*100:.1f} %')") |"
  done < "$WORK/cost.txt"
} > "$OUT"
cat "$OUT"
