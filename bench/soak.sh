#!/usr/bin/env bash
# Soak: TOTAL mixed requests (default 1,000,000) through the gateway against a real redis-server,
# in rounds of wrk, with the gateway's resident memory sampled after every round. Fails on any
# error: a socket error or timeout, an answer other than 200 or 303, a count of 303s that is not
# the count of logouts sent (less those in flight when the round ended), a panic or an ERROR line in the gateway's log, or memory growing by
# more than MAX_GROWTH percent between the round that passed 100,000 requests and the last one.
#
# The mix, repeating every 20 requests (an upstream nginx answers everything but logouts):
#   8  GET /api/x                                       plain passthrough              200
#   4  GET /api/x, Authorization: Bearer <token>        a learned session's token      200
#   2  GET /api/x, Cookie: op_session=<v>               the OP's cookie, checked       200
#   2  POST /token (code grant)                         a token response, learned      200
#   2  GET /session/end?id_token_hint=...               logout, one Redis round trip   303
#   2  GET /session/end                                 the confirmation page          200
# Logouts cycle through SESSIONS seeded sessions (after the first pass: sessions already ended,
# still answered 303); token responses through TOKENS distinct signed responses, so the bearer
# tokens are those of learned sessions.
#
# Pinning: wrk on CPU 0; the gateway (1 thread), nginx and redis-server on CPU 1.
# Usage: bench/soak.sh [TOTAL] [CONNECTIONS]   (env MAX_GROWTH, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg nginx nginx; need_pkg wrk wrk; need_pkg redis-server redis-server; need_pkg cmake cmake
TOTAL=${1:-1000000}; CONNS=${2:-32}; MAX_GROWTH=${MAX_GROWTH:-10}
SESSIONS=20000; TOKENS=2000; ROUND_SECS=5
. bench/lib.sh
redis_bench_setup

# The upstream: discovery and keys, signed token responses by index (a POST to a static file
# is served through nginx's 405 error page), 200 for everything else.
mkdir -p "$WORK/www/.well-known" "$WORK/www/t"
cp tests/fixtures/jwks.json "$WORK/www/jwks"
echo "{\"issuer\":\"$ISS\",\"jwks_uri\":\"$ISS/jwks\",\"token_endpoint\":\"$ISS/token\",\"end_session_endpoint\":\"$ISS/session/end\"}" \
  > "$WORK/www/.well-known/openid-configuration"
target/release/examples/mint_hints tokens "$ISS" rp-c "$TOKENS" L- "$WORK/www/t"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; default_type application/json;
  server { listen 127.0.0.1:$UP; root $WORK/www;
    location = /token { rewrite ^ /t/\$arg_i.json last; }
    location /t/ { error_page 405 =200 \$uri; }
    location = /jwks { }
    location /.well-known/ { }
    location / { return 200 "hello from the upstream\n"; } } }
NGINX
taskset -c "$SRV_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" &
taskset -c "$SRV_CPU" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null 2>&1 &
wait_http "http://127.0.0.1:$UP/"
for _ in $(seq 100); do RC PING >/dev/null 2>&1 && break; sleep 0.1; done

# Sessions to log out, written straight into Redis (the gateway's key layout), and their hints.
python3 - "$SESSIONS" > "$WORK/seed.txt" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"""HSET lgw:s:{{s-{i}}} sub user{i} st a cl '["rp-c"]' cs '{{}}'""")
PY
bad=$(RC < "$WORK/seed.txt" | grep -vc '^4$' || true)
[ "$bad" = 0 ] || { echo "seeding failed for $bad sessions" >&2; exit 1; }
target/release/examples/mint_hints "$ISS" rp-c "$SESSIONS" s- "$WORK/hints.txt" "https://c.example.com/out"

copy_templates "$WORK"
config_soak "$GW" "$ADM" "$UP" "$ISS" "$RPORT" > "$WORK/proxy.yaml"
ulimit -n 65536 2>/dev/null || true
taskset -c "$SRV_CPU" "$BIN" run --config "$WORK/proxy.yaml" 2> "$WORK/gateway.log" &
GW_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADM/readyz" >/dev/null && break; sleep 0.1; done
# Learning needs the upstream's discovery and keys: wait until a token response is learned.
learned=""
for _ in $(seq 100); do
  curl -s -o /dev/null -X POST -d "grant_type=authorization_code&code=probe" "http://127.0.0.1:$GW/token?i=0"
  [ "$(RC HGET 'lgw:s:{L-0}' st 2>/dev/null)" = a ] && { learned=1; break; }
  sleep 0.1
done
[ -n "$learned" ] || { echo "the probe token response was not learned:" >&2; tail -5 "$WORK/gateway.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$GW$(head -1 "$WORK/hints.txt")")
[ "$code" = 303 ] || { echo "probe logout answered $code, not 303" >&2; exit 1; }

cat > "$WORK/mix.lua" <<'LUA'
local hints, i = {}, 0
local tokens = tonumber(os.getenv("TOKENS"))
for line in io.lines(os.getenv("HINTS")) do hints[#hints + 1] = line end
-- Every round is a new wrk: it goes on where the last one stopped (logouts and token requests
-- are sent in equal numbers), so the rounds together cycle through all sessions and tokens.
local start = tonumber(os.getenv("START"))
local h, tb, tt = start % #hints, start * 2 % tokens, start % tokens
local kinds = {"plain","plain","plain","plain","plain","plain","plain","plain","bearer","bearer","bearer","bearer",
  "cookie","cookie","token","token","logout","logout","confirm","confirm"}
local want = {plain = 200, bearer = 200, cookie = 200, token = 200, logout = 303, confirm = 200}
request = function()
  i = i + 1
  local k = kinds[(i - 1) % #kinds + 1]
  if k == "plain" then return wrk.format("GET", "/api/x") end
  if k == "bearer" then tb = tb % tokens + 1; return wrk.format("GET", "/api/x", {Authorization = "Bearer at-L-" .. (tb - 1)}) end
  if k == "cookie" then return wrk.format("GET", "/api/x", {Cookie = "op_session=v" .. i .. "; theme=dark"}) end
  if k == "token" then
    tt = tt % tokens + 1
    return wrk.format("POST", "/token?i=" .. (tt - 1), {["Content-Type"] = "application/x-www-form-urlencoded"},
      "grant_type=authorization_code&code=c" .. i .. "&client_id=rp-c&redirect_uri=https%3A%2F%2Fc.example.com%2Fcb")
  end
  if k == "logout" then h = h % #hints + 1; logouts = logouts + 1; return wrk.format("GET", hints[h]) end
  return wrk.format("GET", "/session/end")
end
local threads = {}
setup = function(th) table.insert(threads, th) end
ok, bad, n303, logouts = 0, 0, 0, 0
badstatus = {}
response = function(status)
  -- Answers do not carry their request: only logouts may be 303, everything else 200.
  if status == 303 then n303 = n303 + 1 end
  if status == 200 or status == 303 then ok = ok + 1 else bad = bad + 1; badstatus[status] = (badstatus[status] or 0) + 1 end
end
done = function()
  local a, b, c, l = 0, 0, 0, 0
  for _, th in ipairs(threads) do
    a = a + th:get("ok"); b = b + th:get("bad"); c = c + th:get("n303"); l = l + th:get("logouts")
  end
  io.write(string.format("answers: expected=%d other=%d 303=%d logouts=%d\n", a, b, c, l))
  -- (One wrk thread: its own table says which statuses were unexpected.)
  for code, n in pairs(badstatus) do io.write(string.format("unexpected status %d: %d\n", code, n)) end
end
LUA

total=0; round=0; sent=0; : > "$WORK/rounds"
while [ "$total" -lt "$TOTAL" ]; do
  round=$((round + 1))
  START=$sent HINTS="$WORK/hints.txt" TOKENS="$TOKENS" taskset -c 0 wrk -t1 -c"$CONNS" -d"${ROUND_SECS}s" -s "$WORK/mix.lua" \
    "http://127.0.0.1:$GW" > "$WORK/wrk.out"
  read -r n other sock logouts < <(python3 - "$WORK/wrk.out" "$CONNS" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
n = int(re.search(r"(\d+) requests in", t).group(1))
other, n303, logouts = map(int, re.search(r"answers: expected=\d+ other=(\d+) 303=(\d+) logouts=(\d+)", t).groups())
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
conns = int(sys.argv[2])
# Logouts in flight when wrk stopped have no answer: at most one per connection.
other += 0 if 0 <= logouts - n303 <= conns else abs(logouts - n303)
print(n, other, sum(map(int, m.groups())) if m else 0, logouts)
PY
)
  total=$((total + n)); sent=$((sent + logouts))
  rss=$(rss_kib "$GW_PID")
  echo "$round $total $rss $other $sock" >> "$WORK/rounds"
  echo "round $round: $n requests (total $total), gateway RSS ${rss} KiB, unexpected answers $other, socket errors $sock" >&2
  [ "$other" = 0 ] && [ "$sock" = 0 ] || { echo "errors in round $round:" >&2; cat "$WORK/wrk.out" >&2; tail -20 "$WORK/gateway.log" >&2; exit 1; }
done
# (pingora logs a request whose client hung up as an ERROR: wrk does that to the requests in
# flight when a round ends. Those are the client's doing; any other ERROR fails the soak.)
if grep -E "panicked|ERROR" "$WORK/gateway.log" | grep -vE "Fail to proxy: Downstream ConnectionClosed|WriteError context: while writing body cause: (Broken pipe|Connection reset)" >&2; then
  echo "the gateway logged errors" >&2; exit 1
fi
ended=$(RC EVAL "local n=0 for i=0,tonumber(ARGV[1])-1 do if redis.call('HGET','lgw:s:{s-'..i..'}','st')=='e' then n=n+1 end end return n" 0 "$SESSIONS")
learned=$(RC EVAL "local n=0 for i=0,tonumber(ARGV[1])-1 do if redis.call('HGET','lgw:s:{L-'..i..'}','st')=='a' then n=n+1 end end return n" 0 "$TOKENS")

OUT=bench/results/soak.md
python3 - "$WORK/rounds" "$CONNS" "$MAX_GROWTH" "$ended" "$SESSIONS" "$learned" "$TOKENS" "$ROUND_SECS" > "$OUT" <<'PY'
import datetime, os, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
conns, limit, ended, sessions, learned, tokens, secs = sys.argv[2], float(sys.argv[3]), *map(int, sys.argv[4:9])
first = next(r for r in rows if r[1] >= 100_000)
last = rows[-1]
growth = (last[2] - first[2]) / first[2] * 100
print("# Soak\n")
print(f"{datetime.date.today()}, {os.cpu_count()} cores, {last[1]:,} mixed requests in {len(rows)} rounds of wrk -t1 -c{conns} -d{secs}s;")
print("wrk on CPU 0; the gateway (1 thread), the upstream nginx and redis-server on CPU 1.\n")
print("| requests so far | gateway RSS MiB |")
print("|---:|---:|")
for r in rows:
    if r is first or r is last or r[0] % 5 == 0:
        print(f"| {r[1]:,} | {r[2] / 1024:.1f} |")
print(f"\nRSS growth from the round that passed 100,000 requests to the last: {growth:+.1f} % (limit {limit:.0f} %).")
print(f"Unexpected answers: {sum(r[3] for r in rows)}; socket errors: {sum(r[4] for r in rows)}; "
      f"sessions ended by logout: {ended:,} of {sessions:,}; token responses learned: {learned:,} of {tokens:,}.")
if growth > limit:
    sys.exit(f"memory grew {growth:.1f} % (limit {limit} %)")
PY
cat "$OUT"
# Every logout sent ended its session (a tenth of the requests, cycling through SESSIONS; the
# requests in flight when a round stopped are not counted), and every token response was learned.
want=$(( total / 10 - CONNS * round )); [ "$want" -le "$SESSIONS" ] || want=$SESSIONS
[ "$ended" -ge "$want" ] || { echo "only $ended sessions ended, $want expected" >&2; exit 1; }
want=$(( total / 10 - CONNS * round )); [ "$want" -le "$TOKENS" ] || want=$TOKENS
[ "$learned" -ge "$want" ] || { echo "only $learned token responses learned, $want expected" >&2; exit 1; }
