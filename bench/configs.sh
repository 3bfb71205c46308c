# The gateway configs the benchmarks run, in one place: bench/*.sh write them with their ports,
# and bench/check-configs (run by scripts/test) writes each with placeholder ports and runs the
# binary's `check` on it, so a renamed or retyped key fails CI instead of a later benchmark.
# Each function prints proxy.yaml on stdout; templates_dir is relative to the config's directory.

# passthrough.sh: memory store, nothing to learn. Args: LISTEN_PORT ADMIN_PORT UPSTREAM_PORT
# [WORK_STEALING]
config_passthrough() {
  cat <<YAML
listen: "127.0.0.1:$1"
admin: { listen: "127.0.0.1:$2" }
upstream: { url: "http://127.0.0.1:$3", idle_timeout: 60s }
issuer: "http://127.0.0.1:$1"
session_store: { backend: memory }
templates_dir: templates
log: { level: warn }
server: { threads: 1, work_stealing: ${4:-true}, grace_period: 1s, shutdown_timeout: 1s }
limits: { max_connections: 100000 }
YAML
}

# credentials.sh: the OP's cookie and endpoints named, so every request's credentials are
# checked. Args: LISTEN_PORT ADMIN_PORT UPSTREAM_PORT
config_credentials() {
  cat <<YAML
listen: "127.0.0.1:$1"
admin: { listen: "127.0.0.1:$2" }
upstream:
  url: "http://127.0.0.1:$3"
  idle_timeout: 60s
  session_cookies: [op_session]
  endpoints: { token: /token, userinfo: /userinfo, authorization: /authorize }
issuer: "http://127.0.0.1:$1"
session_store: { backend: memory }
templates_dir: templates
log: { level: warn }
server: { threads: 1, grace_period: 1s, shutdown_timeout: 1s }
limits: { max_connections: 100000 }
YAML
}

# logout.sh: Redis, one relying party. Args: LISTEN_PORT ADMIN_PORT UPSTREAM_PORT ISSUER REDIS_PORT [REPLICA_ACKS] [THREADS]
config_logout() {
  cat <<YAML
listen: "127.0.0.1:$1"
admin: { listen: "127.0.0.1:$2" }
upstream: { url: "http://127.0.0.1:$3" }
issuer: "$4"
session_store: { backend: redis, redis: { url: "redis://127.0.0.1:$5/0", replica_acks: ${6:-0} } }
clients:
  rp-c: { post_logout_redirect_uris: ["https://c.example.com/out"] }
templates_dir: templates
log: { level: warn }
server: { threads: ${7:-1}, grace_period: 1s, shutdown_timeout: 1s }
rate_limit: { per_second: 0 }   # one load generator on one address: the per-client limit is not under test
YAML
}

# soak.sh: Redis, learning at the token endpoint, the OP's cookie checked, one relying party.
# Args: LISTEN_PORT ADMIN_PORT UPSTREAM_PORT ISSUER REDIS_PORT
config_soak() {
  cat <<YAML
listen: "127.0.0.1:$1"
admin: { listen: "127.0.0.1:$2" }
upstream:
  url: "http://127.0.0.1:$3"
  idle_timeout: 60s
  session_cookies: [op_session]
  endpoints: { token: /token, userinfo: /userinfo, authorization: /authorize }
issuer: "$4"
session_store: { backend: redis, redis: { url: "redis://127.0.0.1:$5/0" } }
clients:
  rp-c: { post_logout_redirect_uris: ["https://c.example.com/out"] }
templates_dir: templates
log: { level: warn }
server: { threads: 1, grace_period: 1s, shutdown_timeout: 1s }
limits: { max_connections: 100000 }
rate_limit: { per_second: 0 }   # one load generator on one address
# A tenth of the soak's requests open a confirmation page nobody confirms. The store keeps at most
# 100,000 such contexts per confirmation_ttl window (then 503: the flood cap); a short TTL rolls
# the window so the soak measures memory over time, not the cap.
end_session: { confirmation_ttl: 30s }
YAML
}
