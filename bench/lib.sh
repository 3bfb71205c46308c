# Shared by bench/*.sh: ports, pinning, process CPU and memory, wrk output, medians.
# Sourced after `cd` to the repository root and `. scripts/lib.sh`.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Servers share CPU 1 (the last CPU on a 1-core machine); load generators run on CPU 0.
SRV_CPU=$(( $(nproc) > 1 ? 1 : 0 ))

# user+system clock ticks of a process so far.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Context switches of a process, summed over its threads (voluntary and not).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }

# Microseconds of CPU per request between two tick readings: cpu_us_per T0 T1 REQUESTS
cpu_us_per() { python3 -c "print(f'{($2-$1)/$(getconf CLK_TCK)*1e6/max($3,1):.1f}')"; }

# Resident memory of processes in KiB (summed): rss_kib PID...
rss_kib() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status") )); done; echo "$t"; }

# "requests/s p50_ms p99_ms requests" from a wrk --latency output file.
wrk_summary() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def lat(p):
    v, u = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)$", text, re.M).groups()
    return float(v) * unit[u]
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
n = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {lat(50):.3f} {lat(99):.3f} {n}")
PY
}

# Median of numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Wait until a URL answers (any status), at most 10 s.
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

# The gateway's templates next to a generated config in $1.
copy_templates() { mkdir -p "$1/templates" && cp -r templates/. "$1/templates/"; }

# The start of the benchmarks that log out against a real Redis (logout.sh, soak.sh): the product
# binary and mint_hints built, in two invocations (building an example turns on dev-dependency
# features, Cargo.toml, for everything built with it, and the measured binary must be the
# product's); a work directory removed on exit; the benchmark configs; ports for the upstream,
# the gateway, its admin listener and Redis; the issuer; RC, redis-cli on that Redis.
redis_bench_setup() {
  cargo build --release --locked -q --bin logout-gateway
  cargo build --release --locked -q --example mint_hints
  BIN=target/release/logout-gateway
  WORK=$(mktemp -d); chmod 755 "$WORK"
  trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; git worktree remove --force target/bench-before/src 2>/dev/null || true; rm -rf "$WORK"' EXIT
  . bench/configs.sh
  UP=$(free_port); GW=$(free_port); ADM=$(free_port); RPORT=$(free_port)
  ISS="http://127.0.0.1:$GW"
  RC() { redis-cli -p "$RPORT" "$@"; }
}

# The gateway at an earlier revision, built from its own checkout into a target directory kept
# between runs and rebuilt only when the revision changes (so bench/run and every later run reuse
# it; the checkout always sits at the same path, so a rebuild is incremental); its templates
# copied to $WORK/before-templates (a revision's templates match its own renderer).
# Sets BEFORE_BIN. Usage: build_before REV (after $WORK exists).
BEFORE_DIR=target/bench-before
build_before() {
  local rev root=$PWD
  rev=$(git rev-parse --verify "$1^{commit}")
  if [ "$(cat "$BEFORE_DIR/rev" 2>/dev/null)" != "$rev" ] || [ ! -x "$BEFORE_DIR/release/logout-gateway" ]; then
    mkdir -p "$BEFORE_DIR"; rm -f "$BEFORE_DIR/rev"
    git worktree remove --force "$BEFORE_DIR/src" 2>/dev/null || true
    rm -rf "$BEFORE_DIR/src"; git worktree prune
    git worktree add -f --detach "$BEFORE_DIR/src" "$rev" >/dev/null 2>&1
    (cd "$BEFORE_DIR/src" && CARGO_TARGET_DIR="$root/$BEFORE_DIR" cargo build --release --locked -q --bin logout-gateway)
    git worktree remove --force "$BEFORE_DIR/src"
    echo "$rev" > "$BEFORE_DIR/rev"
  fi
  mkdir -p "$WORK/before-templates"
  git archive "$rev" templates | tar -x --strip-components=1 -C "$WORK/before-templates"
  BEFORE_BIN=$BEFORE_DIR/release/logout-gateway
}

# The upstream of the logout benchmarks: nginx serving the test keys (tests/fixtures/jwks.json) at
# /jwks and whatever the caller writes under $WORK/www (the discovery document names the issuer).
start_keys_upstream() {
  mkdir -p "$WORK/www/.well-known"
  cp tests/fixtures/jwks.json "$WORK/www/jwks"
  cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log warn;
events {}
http { access_log off; default_type application/json;
  server { listen 127.0.0.1:$UP; root $WORK/www; } }
NGINX
  nginx -c "$WORK/nginx.conf" -p "$WORK" &
}

# A wrk script that sends the lines of the file named by $PATHS in turn (each hint is used once
# while there are enough of them). Usage: write_paths_lua FILE (a caller may append to it).
write_paths_lua() {
  cat > "$1" <<'LUA'
local paths, i = {}, 0
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
}

# COUNT active sessions of rp-c under the ids PREFIX0.. written straight into Redis (the
# gateway's key layout), and a hint for each, in order, in OUT. Usage: seed_sessions PREFIX COUNT OUT
seed_sessions() {
  python3 - "$2" "$1" > "$WORK/seed.txt" <<'PY'
import sys
n, prefix = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(f"""HSET lgw:s:{{{prefix}{i}}} sub user{i} st a cl '["rp-c"]' cs '{{}}'""")
PY
  local bad
  bad=$(RC < "$WORK/seed.txt" | grep -vc '^4$' || true)
  [ "$bad" = 0 ] || { echo "seeding failed for $bad sessions" >&2; return 1; }
  target/release/examples/mint_hints "$ISS" rp-c "$2" "$1" "$3" "https://c.example.com/out"
}
