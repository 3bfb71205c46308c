#!/usr/bin/env bash
# node-oidc-provider's own end_session, for comparison with the gateway's logout (bench/logout.sh):
# GET /session/end with a valid RS256 id_token_hint and a registered post_logout_redirect_uri, as
# an RP sends it. node-oidc-provider answers with its confirmation form (hint verified, a session
# and an xsrf token stored, a page rendered): its logout needs a second request, the form's POST,
# which is not counted here, so its figures are a lower bound on its cost per logout. The
# gateway answers the same request with the finished logout (303), one request.
#
# Pinning: wrk on CPU 0; the OP (node, one process) on CPU 1.
# Usage: bench/op-logout.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_node 20; need_pkg npm npm; need_pkg wrk wrk; need_pkg cmake cmake
ROUNDS=${1:-3}; SECS=${2:-5}; CONNS=${3:-16}
. bench/lib.sh
(cd e2e && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cargo build --release --locked -q --example mint_hints
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
OP=$(free_port)
NODE_ENV=production taskset -c "$SRV_CPU" node e2e/bench/op-end-session.js "$OP" tests/fixtures/rsa-op.pem > "$WORK/op.log" 2>&1 &
OP_PID=$!
wait_http "http://127.0.0.1:$OP/.well-known/openid-configuration"
target/release/examples/mint_hints "http://127.0.0.1:$OP" rp-c 20000 op- "$WORK/paths.txt" "https://c.example.com/out"
code=$(curl -s -o "$WORK/probe.html" -w "%{http_code}" "http://127.0.0.1:$OP$(head -1 "$WORK/paths.txt")")
grep -q '<form' "$WORK/probe.html" && [ "$code" = 200 ] \
  || { echo "node-oidc-provider answered $code without its logout form:"; head -c 400 "$WORK/probe.html"; exit 1; } >&2
cat > "$WORK/paths.lua" <<'LUA'
local paths, i = {}, 0
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end
LUA
: > "$WORK/rows"
for r in $(seq "$ROUNDS"); do
  t0=$(cpu_ticks "$OP_PID")
  PATHS="$WORK/paths.txt" taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/paths.lua" "http://127.0.0.1:$OP" > "$WORK/wrk.out"
  read -r rps p50 p99 n < <(wrk_summary "$WORK/wrk.out")
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$WORK/wrk.out"); non2xx=${non2xx:-0}
  echo "$rps $p50 $p99 $(cpu_us_per "$t0" "$(cpu_ticks "$OP_PID")" "$n") $non2xx" >> "$WORK/rows"
  echo "round $r: $(tail -1 "$WORK/rows")" >&2
done
OUT=bench/results/op-logout.md
python3 - "$WORK/rows" "$CONNS" "$SECS" "$(node -p 'require("./e2e/node_modules/oidc-provider/package.json").version')" > "$OUT" <<'PY'
import statistics, sys, datetime, os
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
print("# node-oidc-provider's end_session (for comparison)\n")
print(f"{datetime.date.today()}, {os.cpu_count()} cores, oidc-provider {sys.argv[4]} on Node {os.popen('node --version').read().strip()} (NODE_ENV=production),")
print(f"wrk -t1 -c{sys.argv[2]} -d{sys.argv[3]}s, median of {len(rows)} rounds; wrk on CPU 0, node on CPU 1. Each request: a valid RS256")
print("id_token_hint and a registered post_logout_redirect_uri; node-oidc-provider answers with its")
print("confirmation form (its logout needs that form's POST as well, not counted here).\n")
print("| end_session requests/s | p50 ms | p99 ms | OP CPU µs per request | answers not 2xx/3xx |")
print("|---:|---:|---:|---:|---:|")
print(f"| {med[0]:.0f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.0f} | {med[4]:.0f} |")
PY
cat "$OUT"
