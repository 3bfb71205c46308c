#!/usr/bin/env bash
# Logout cost: logouts/s and p50/p99 latency of RP-initiated logouts (valid RS256 hint, known
# session, registered redirect URI: the 303 path) against pre-registered sessions in a real
# redis-server on loopback; Redis round trips per logout (INFO commandstats) and gateway CPU per
# logout. The upstream (for discovery and keys only) is nginx serving static files.
#
# Pinning: wrk on CPU 0; gateway and redis-server on CPU 1 (2-core machine).
# Usage: bench/logout.sh [LOGOUTS_PER_ROUND] [ROUNDS] [CONNECTIONS]
# THREADS=N: the gateway's server.threads (default 1; both on CPU 1, like the single-thread run);
# results in bench/results/logout-N-threads.md for N > 1.
# REPLICA_ACKS=N: N replicas on CPU 1 too, and session_store.redis.replica_acks: N (every logout
# then WAITs for them); results in bench/results/logout-replica-acks.md.
# PERF_DATA=FILE: perf record (call graphs) of the gateway during the first round, into FILE
# (build with CARGO_PROFILE_RELEASE_STRIP=false for symbols).
# BEFORE=REV: the same rounds, interleaved, against the gateway at revision REV (default 9f041f5,
# the gateway the performance issue measured; built from its own checkout), same Redis, same
# hints' shape, and the ratios now/before; BEFORE=none skips it (and REPLICA_ACKS does, since
# that revision has no replica_acks).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx; need_pkg wrk wrk; need_pkg redis-server redis-server; need_pkg cmake cmake
N=${1:-60000}; ROUNDS=${2:-3}; CONNS=${3:-16}; ACKS=${REPLICA_ACKS:-0}; THREADS=${THREADS:-1}
BEFORE=${BEFORE:-9f041f5}; [ "$ACKS" = 0 ] || BEFORE=none
. bench/lib.sh
redis_bench_setup
NAMES=(now); [ "$BEFORE" = none ] || { build_before "$BEFORE"; NAMES=(before now); }

start_keys_upstream
echo "{\"issuer\":\"$ISS\",\"jwks_uri\":\"$ISS/jwks\"}" > "$WORK/www/.well-known/openid-configuration"
taskset -c "$SRV_CPU" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" --repl-diskless-sync-delay 0 >/dev/null 2>&1 &
for i in $(seq "$ACKS"); do
  mkdir -p "$WORK/replica$i"
  taskset -c "$SRV_CPU" redis-server --port "$(free_port)" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/replica$i" --replicaof 127.0.0.1 "$RPORT" >/dev/null 2>&1 &
done
for _ in $(seq 100); do
  [ "$(RC INFO replication 2>/dev/null | grep -c 'state=online' || true)" -ge "$ACKS" ] && break; sleep 0.1
done

# Each gateway in a directory of its own with its own templates; both accept the same hints
# (one issuer, the upstream's keys).
declare -A PORT PID
start_gateway() { # NAME BINARY TEMPLATES
  local dir="$WORK/$1" adm
  mkdir -p "$dir"; cp -r "$3" "$dir/templates"
  if [ "$1" = now ]; then PORT[now]=$GW; adm=$ADM; else PORT[$1]=$(free_port); adm=$(free_port); fi
  config_logout "${PORT[$1]}" "$adm" "$UP" "$ISS" "$RPORT" "$ACKS" "$THREADS" > "$dir/proxy.yaml"
  [ "$1" = now ] || sed -i 's/, replica_acks: 0//' "$dir/proxy.yaml"
  taskset -c "$SRV_CPU" "$2" run --config "$dir/proxy.yaml" 2> "$dir/gateway.log" &
  PID[$1]=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$adm/readyz" >/dev/null && break; sleep 0.1; done
  # A probe logout of a session of its own: it must be the 303 path, or the figures mean nothing.
  RC HSET "lgw:s:{probe-$1-0}" sub user0 st a cl '["rp-c"]' cs '{}' >/dev/null
  target/release/examples/mint_hints "$ISS" rp-c 1 "probe-$1-" "$dir/probe.txt" "https://c.example.com/out"
  local code
  code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:${PORT[$1]}$(cat "$dir/probe.txt")")
  [ "$code" = 303 ] || { echo "$1: probe logout answered $code, not 303:"; tail -5 "$dir/gateway.log"; exit 1; } >&2
}
# (The issuer names the current gateway's listener, and the earlier one is told the same: it
# fetches the keys from the issuer's jwks_uri, through the current one, so that one starts first.)
start_gateway now "$BIN" templates
[ "$BEFORE" = none ] || start_gateway before "$BEFORE_BIN" "$WORK/before-templates"

write_paths_lua "$WORK/paths.lua"
cat >> "$WORK/paths.lua" <<'LUA'
local threads = {}
setup = function(t) table.insert(threads, t) end
n303, other = 0, 0
response = function(status)
  if status == 303 then n303 = n303 + 1 else other = other + 1 end
end
done = function()
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("n303"); b = b + t:get("other") end
  io.write(string.format("answers: 303=%d other=%d\n", a, b))
end
LUA
# Per-command call counts as "name=calls,..." (INFO commandstats).
calls() { RC INFO commandstats | python3 -c 'import sys,re; print(",".join(f"{n}={c}" for n,c in re.findall(r"cmdstat_([a-z|_-]+):calls=(\d+)", sys.stdin.read())))'; }
for name in "${NAMES[@]}"; do : > "$WORK/rows.$name"; done
for r in $(seq "$ROUNDS"); do for name in "${NAMES[@]}"; do
  GW_PID=${PID[$name]}; P="r$r-$name-"
  # Fresh sessions for this round, written straight into Redis (the gateway's key layout).
  seed_sessions "$P" "$N" "$WORK/paths.txt"
  # Each path is used once; the run stops with an error if wrk had to reuse one.
  c0=$(calls); t0=$(cpu_ticks "$GW_PID"); x0=$(switches "$GW_PID")
  if [ -n "${PERF_DATA:-}" ] && [ "$r" = 1 ] && [ "$name" = now ]; then
    perf record -q -F 999 --call-graph dwarf,16384 -o "$PERF_DATA" -p "$GW_PID" -- sleep 2 2>/dev/null &
  fi
  PATHS="$WORK/paths.txt" taskset -c 0 wrk -t1 -c"$CONNS" -d2s --latency -s "$WORK/paths.lua" "http://127.0.0.1:${PORT[$name]}" > "$WORK/wrk.out"
  t1=$(cpu_ticks "$GW_PID"); c1=$(calls); x1=$(switches "$GW_PID")
  python3 - "$WORK/wrk.out" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" "$N" "$x0" "$x1" >> "$WORK/rows.$name" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def parse(s):
    return {k: int(v) for k, v in (kv.split("=") for kv in s.split(",") if kv)}
c0, c1 = parse(sys.argv[2]), parse(sys.argv[3])
t0, t1, tck, n, x0, x1 = map(int, sys.argv[4:10])
delta = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1}
delta.pop("info", None)
# Commands the logout script runs inside Redis; everything else is a client round trip.
inside = {"hmget", "hset", "expire"}  # (a WAIT, with REPLICA_ACKS, is a round trip of its own)
trips = sum(v for k, v in delta.items() if k not in inside)
executed = sum(delta.values())
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def lat(p):
    v, u = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)$", text, re.M).groups()
    return float(v) * unit[u]
reqs = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
bad = int(re.search(r"answers: 303=\d+ other=(\d+)", text).group(1))
if reqs > n:
    sys.exit(f"wrapped around: {reqs} requests for {n} sessions; raise LOGOUTS_PER_ROUND")
# Two INFO calls of our own per round are in the count.
print(f"{rps:.0f} {lat(50):.3f} {lat(99):.3f} {trips / reqs:.2f} {executed / reqs:.2f} {(t1 - t0) / tck * 1e6 / reqs:.0f} {bad} {(x1 - x0) / reqs:.2f}")
print(f"  per-command calls this round: {delta}", file=sys.stderr)
PY
  echo "round $r, $name: $(tail -1 "$WORK/rows.$name")" >&2
  # Every 303 really ended a session in Redis: count the round's tombstones.
  ended=$(RC EVAL "local n=0 for i=0,tonumber(ARGV[2])-1 do if redis.call('HGET','lgw:s:{'..ARGV[1]..i..'}','st')=='e' then n=n+1 end end return n" 0 "$P" "$N")
  n303=$(sed -n 's/^answers: 303=\([0-9]*\).*/\1/p' "$WORK/wrk.out")
  # (Requests still in flight when wrk stops end sessions without being counted: at most CONNS.)
  [ "$ended" -ge "$n303" ] && [ $(( ended - n303 )) -le "$CONNS" ] \
    || { echo "$name: $n303 answers of 303 but $ended sessions ended" >&2; exit 1; }
done; done
OUT=bench/results/logout.md
[ "$ACKS" = 0 ] || OUT=bench/results/logout-replica-acks.md
[ "$THREADS" = 1 ] || OUT=bench/results/logout-$THREADS-threads.md
python3 - "$WORK" "$CONNS" "$N" "$ACKS" "$THREADS" "$BEFORE" "$(git rev-parse --short HEAD)" > "$OUT" <<'PY'
import statistics, sys, datetime, os
work, conns, n, acks, threads, before, head = sys.argv[1:8]
acks, threads = int(acks), int(threads)
names = ["now"] if before == "none" else ["before", "now"]
med = {}
for name in names:
    rows = [list(map(float, l.split())) for l in open(f"{work}/rows.{name}") if l.strip()]
    med[name] = [statistics.median(c) for c in zip(*rows)]
title = f" with replica_acks: {acks}" if acks else ""
title += f", gateway with {threads} threads" if threads > 1 else ""
print("# Logout benchmark" + title + "\n")
if acks:
    print(f"{acks} replica(s) of the redis-server on the same CPU; every logout WAITs for them.\n")
inter = "" if len(names) == 1 else " interleaved"
print(f"{datetime.date.today()}, {os.cpu_count()} cores, wrk -t1 -c{conns} -d2s, median of {len(rows)}{inter} rounds;")
print(f"{n} fresh sessions per round; every request is a valid RS256 hint for a known session")
gw = "gateway (1 thread)" if threads == 1 else f"gateway ({threads} threads)"
print(f"with a registered redirect URI (answer: 303). wrk on CPU 0; {gw} and redis-server on CPU 1.")
if len(names) > 1:
    print(f"`before` is {before} (the gateway the performance issue measured), `now` is {head}; same Redis, same script.")
print("\n| gateway | logouts/s | p50 ms | p99 ms | Redis round trips per logout | commands run in Redis per logout | gateway CPU µs per logout | answers other than 303 | context switches per logout |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    m = med[name]
    print(f"| {name} | {m[0]:.0f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.2f} | {m[4]:.2f} | {m[5]:.0f} | {m[6]:.0f} | {m[7]:.2f} |")
if len(names) > 1:
    b, c = med["before"], med["now"]
    print(f"\nnow / before (medians): logouts/s {c[0] / b[0]:.2f}, CPU per logout {c[5] / b[5]:.2f}.")
    # Each round's own ratio (now against the before run just ahead of it): how far the host moved.
    rows = {k: [list(map(float, l.split())) for l in open(f"{work}/rows.{k}") if l.strip()] for k in names}
    pairs = list(zip(rows["before"], rows["now"]))
    spread = lambda col: sorted(y[col] / x[col] for x, y in pairs)
    fmt = lambda v: f"{v[0]:.2f} / {statistics.median(v):.2f} / {v[-1]:.2f}"
    print(f"Per round, min / median / max: logouts/s {fmt(spread(0))}, CPU per logout {fmt(spread(5))}.")
print("\nRound trips count every command a client sent (EVALSHA of the logout script); commands run in")
print("Redis add the script's own HMGET, HSET and EXPIRE. CPU is the gateway process's user+system time;")
print("context switches are summed over its threads (voluntary and not).")
PY
cat "$OUT"
