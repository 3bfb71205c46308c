#!/usr/bin/env bash
# Instructions per logout, a figure the host's load does not move (bench/logout.sh's wall-clock
# ratios do, on a shared VM): the gateway the performance issue measured (BEFORE, default
# 9f041f5, built from its own checkout) and the current one, each under valgrind's callgrind,
# with one and with two gateway threads. The same logouts as bench/logout.sh: a valid RS256 hint
# for a known session in a real redis-server, a registered redirect URI, answer 303. Each
# gateway runs alone, on ports of its own; instrumentation is on for the measured part only (after
# a warm-up), so start-up, the key fetch and shutdown are not counted.
#
# Valgrind does not emulate this CPU's big-number instructions (ADX, BMI2), so aws-lc's RSA runs
# its portable code there and weighs more than natively (the same library in both gateways; the
# earlier one also rebuilt the RSA key for every hint).
#
# Usage: bench/logout-instructions.sh [SECONDS] [CONNECTIONS]; results in
# bench/results/logout-instructions.md
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx; need_pkg wrk wrk; need_pkg redis-server redis-server; need_pkg valgrind valgrind
need_pkg cmake cmake
SECS=${1:-5}; CONNS=${2:-8}; BEFORE=${BEFORE:-9f041f5}
. bench/lib.sh
redis_bench_setup
build_before "$BEFORE"

start_keys_upstream
taskset -c "$SRV_CPU" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" >/dev/null 2>&1 &
wait_http "http://127.0.0.1:$UP/jwks"
write_paths_lua "$WORK/paths.lua"

measure() { # NAME BINARY TEMPLATES THREADS; prints instructions per logout
  local name=$1 dir="$WORK/$1-$4" out pid n ended
  mkdir -p "$dir"; cp -r "$3" "$dir/templates"; out="$dir/callgrind.out"
  # Ports of its own (the previous gateway's may still be in TIME_WAIT); it is its own issuer.
  GW=$(free_port); ADM=$(free_port); ISS="http://127.0.0.1:$GW"
  echo "{\"issuer\":\"$ISS\",\"jwks_uri\":\"$ISS/jwks\"}" > "$WORK/www/.well-known/openid-configuration"
  config_logout "$GW" "$ADM" "$UP" "$ISS" "$RPORT" 0 "$4" | sed 's/, replica_acks: 0//' > "$dir/proxy.yaml"
  taskset -c "$SRV_CPU" valgrind -q --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$2" run --config "$dir/proxy.yaml" 2> "$dir/gateway.log" &
  pid=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$ADM/readyz" > /dev/null && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$ADM/readyz" > /dev/null || { echo "$name: not ready" >&2; tail -5 "$dir/gateway.log" >&2; exit 1; }
  seed_sessions "w-$name-$4-" 2000 "$WORK/paths.txt"
  PATHS="$WORK/paths.txt" taskset -c 0 wrk -t1 -c"$CONNS" -d2s -s "$WORK/paths.lua" "http://127.0.0.1:$GW" > /dev/null
  seed_sessions "m-$name-$4-" 6000 "$WORK/paths.txt"
  callgrind_control -i on "$pid" > /dev/null 2>&1
  PATHS="$WORK/paths.txt" taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$WORK/paths.lua" "http://127.0.0.1:$GW" > "$dir/wrk.out"
  callgrind_control -i off "$pid" > /dev/null 2>&1
  callgrind_control -d measured "$pid" > /dev/null 2>&1
  n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$dir/wrk.out")
  # Every request was the 303 path and ended its session (at most CONNS still in flight).
  ! grep -q "Non-2xx or 3xx" "$dir/wrk.out" || { echo "$name: answers other than 303" >&2; exit 1; }
  ended=$(RC EVAL "local n=0 for i=0,5999 do if redis.call('HGET','lgw:s:{'..ARGV[1]..i..'}','st')=='e' then n=n+1 end end return n" 0 "m-$name-$4-")
  [ "$n" -gt 0 ] && [ "$ended" -ge "$n" ] && [ $(( ended - n )) -le "$CONNS" ] \
    || { echo "$name: $n logouts but $ended sessions ended" >&2; exit 1; }
  [ "$n" -lt 6000 ] || { echo "$name: ran out of hints; fewer SECONDS" >&2; exit 1; }
  kill -9 "$pid"; wait "$pid" 2> /dev/null || true
  echo $(( $(awk '/^totals:/ {print $2; exit}' "$out.1") / n ))
}

rows=""
for t in 1 2; do
  b=$(measure before "$BEFORE_BIN" "$WORK/before-templates" "$t")
  c=$(measure now "$BIN" templates "$t")
  echo "threads $t: before $b, now $c" >&2
  rows="$rows$t $b $c"$'\n'
done
python3 - "$SECS" "$CONNS" "$BEFORE" "$(git rev-parse --short HEAD)" > bench/results/logout-instructions.md <<PY
import datetime, sys
secs, conns, before, head = sys.argv[1:5]
print("# Instructions per logout\n")
print(f"{datetime.date.today()}, valgrind callgrind, wrk -t1 -c{conns} -d{secs}s of logouts after a 2 s warm-up;")
print("instructions of the gateway process (all threads) divided by the logouts wrk completed.")
print(f"\`before\` is {before} (the gateway the performance issue measured), \`now\` is {head}.\n")
print("| gateway threads | before | now | now / before |")
print("|---:|---:|---:|---:|")
for line in """$rows""".strip().splitlines():
    t, b, c = map(int, line.split())
    print(f"| {t} | {b:,} | {c:,} | {c / b:.2f} |")
PY
cat bench/results/logout-instructions.md
