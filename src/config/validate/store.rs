//! `session_store`, `revocation` and `backchannel`: where state lives and what leaves the gateway.

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::V;
use crate::config::raw::{RawBackchannel, RawCluster, RawRedis, RawRevocation, RawSentinel, RawSessionStore};
use crate::config::{
    BackchannelConfig, Backend, ClusterConfig, RedisConfig, RedisTarget, Revocation, Secret, SentinelConfig,
    SessionStore, TokenKey,
};

pub(super) fn session_store(v: &mut V, raw: RawSessionStore) -> SessionStore {
    if raw.backend == "memory" && raw.redis.is_some() {
        v.err("session_store.redis", "only applies to backend redis");
    }
    let backend = match raw.backend.as_str() {
        "memory" => Backend::Memory,
        "redis" => match raw.redis {
            None => {
                v.err("session_store.redis", "backend redis needs session_store.redis.url, .sentinel or .cluster");
                Backend::Memory
            }
            Some(r) => Backend::Redis(redis(v, r)),
        },
        other => {
            v.err("session_store.backend", format!("must be redis or memory (got {other:?})"));
            Backend::Memory
        }
    };
    // Braces would break the `{sid}` hash tags that keep a session's keys in one cluster slot.
    if raw.key_prefix.is_empty() || raw.key_prefix.len() > 64 || raw.key_prefix.contains(['{', '}', ' ']) {
        v.err("session_store.key_prefix", "must be 1 to 64 characters without spaces or braces");
    }
    SessionStore {
        backend,
        key_prefix: raw.key_prefix,
        session_ttl: v.duration("session_store.session_ttl", &raw.session_ttl, Duration::from_secs(86400)),
        tombstone_ttl: v.duration("session_store.tombstone_ttl", &raw.tombstone_ttl, Duration::from_secs(86400)),
        access_token_ttl: v.duration(
            "session_store.access_token_ttl",
            &raw.access_token_ttl,
            Duration::from_secs(86400),
        ),
        refresh_token_ttl: v.duration(
            "session_store.refresh_token_ttl",
            &raw.refresh_token_ttl,
            Duration::from_secs(30 * 86400),
        ),
    }
}

/// `session_store.redis`.
fn redis(v: &mut V, r: RawRedis) -> RedisConfig {
    let target = match (r.url, r.sentinel, r.cluster) {
        (Some(url), None, None) => {
            match Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "unix" | "redis+unix") => {}
                _ => v.err("session_store.redis.url", "must be a redis://, rediss:// or unix:// URL"),
            }
            RedisTarget::Url(Secret::new(url))
        }
        (None, Some(s), None) => RedisTarget::Sentinel(sentinel(v, s)),
        (None, None, Some(c)) => RedisTarget::Cluster(cluster(v, c)),
        _ => {
            v.err("session_store.redis", "needs exactly one of url, sentinel and cluster");
            RedisTarget::Url(Secret::new(String::new()))
        }
    };
    if r.replica_acks > 16 {
        v.err("session_store.redis.replica_acks", "must be between 0 and 16");
    }
    let half_second = Duration::from_millis(500);
    RedisConfig {
        target,
        replica_acks: r.replica_acks,
        connect_timeout: v.duration("session_store.redis.connect_timeout", &r.connect_timeout, half_second),
        response_timeout: v.duration("session_store.redis.response_timeout", &r.response_timeout, half_second),
    }
}

/// `session_store.redis.sentinel`: a master name and at least one sentinel address.
fn sentinel(v: &mut V, s: RawSentinel) -> SentinelConfig {
    if s.master_name.is_empty() || s.master_name.contains(char::is_whitespace) {
        v.err("session_store.redis.sentinel.master_name", "must be a name without spaces");
    }
    nodes(v, "sentinel", &s.nodes);
    SentinelConfig {
        master_name: s.master_name,
        nodes: s.nodes,
        password: secret(s.password),
        sentinel_password: secret(s.sentinel_password),
    }
}

/// `session_store.redis.cluster`: at least one node to start from.
fn cluster(v: &mut V, c: RawCluster) -> ClusterConfig {
    nodes(v, "cluster", &c.nodes);
    ClusterConfig { nodes: c.nodes, password: secret(c.password) }
}

/// `session_store.redis.<form>.nodes`: one or more `host:port`.
fn nodes(v: &mut V, form: &str, nodes: &[String]) {
    if nodes.is_empty() {
        v.err(format!("session_store.redis.{form}.nodes"), "must name at least one node (host:port)");
    }
    for (i, n) in nodes.iter().enumerate() {
        let addr = n.strip_prefix("rediss://").unwrap_or(n);
        let ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            let what = format!("must be host:port, or rediss://host:port for TLS (got {n:?})");
            v.err(format!("session_store.redis.{form}.nodes[{i}]"), what);
        }
    }
    if nodes.iter().any(|n| n.starts_with("rediss://")) != nodes.iter().all(|n| n.starts_with("rediss://")) {
        v.err(format!("session_store.redis.{form}.nodes"), "either every node is rediss:// (TLS) or none");
    }
}

fn secret(p: Option<String>) -> Option<Secret> {
    p.filter(|p| !p.is_empty()).map(Secret::new)
}

pub(super) fn revocation(v: &mut V, raw: RawRevocation) -> Revocation {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw.encryption_key.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.encryption_key.trim()))
        .ok()
        .filter(|k| k.len() == 32);
    if key.is_none() {
        v.err("revocation.encryption_key", "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)");
    }
    Revocation {
        encryption_key: TokenKey(key.unwrap_or_default()),
        timeout: v.duration("revocation.timeout", &raw.timeout, Duration::from_secs(5)),
    }
}

pub(super) fn backchannel(v: &mut V, raw: &RawBackchannel, base: &Path) -> BackchannelConfig {
    let signing_key_pem = raw.signing_key_file.as_ref().and_then(|f| signing_key(v, &base.join(f)));
    let algorithm = match raw.algorithm.as_str() {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        other => {
            v.err("backchannel.algorithm", format!("must be RS256 or ES256 (got {other:?})"));
            jsonwebtoken::Algorithm::RS256
        }
    };
    if raw.max_attempts == 0 || raw.max_attempts > 100 {
        v.err("backchannel.max_attempts", "must be between 1 and 100");
    }
    if raw.concurrency == 0 || raw.concurrency > 1024 {
        v.err("backchannel.concurrency", "must be between 1 and 1024");
    }
    let d = |v: &mut V, k: &str, s: &str| v.duration(&format!("backchannel.{k}"), s, Duration::from_secs(1));
    let timeout = d(v, "timeout", &raw.timeout);
    let claim_after = d(v, "claim_after", &raw.claim_after);
    if claim_after <= timeout {
        v.err("backchannel.claim_after", "must be longer than backchannel.timeout (or live deliveries get taken over)");
    }
    let wait_before_redirect = if raw.wait_before_redirect.trim().trim_end_matches(['s', 'm']).trim() == "0" {
        Duration::ZERO
    } else {
        d(v, "wait_before_redirect", &raw.wait_before_redirect)
    };
    BackchannelConfig {
        signing_key_pem,
        algorithm,
        key_rotation: d(v, "key_rotation", &raw.key_rotation),
        timeout,
        max_attempts: raw.max_attempts,
        retry_initial: d(v, "retry_initial", &raw.retry_initial),
        retry_max: d(v, "retry_max", &raw.retry_max),
        concurrency: raw.concurrency,
        claim_after,
        wait_before_redirect,
        poll_interval: d(v, "poll_interval", &raw.poll_interval),
    }
}

/// `backchannel.signing_key_file`: a PEM file, or a private JWK (JSON), as PEM.
fn signing_key(v: &mut V, path: &Path) -> Option<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| {
        // A JSON file is a private JWK; anything else is PEM.
        if t.trim_start().starts_with('{') {
            crate::crypto::keys::jwk_to_pem(&t)
        } else {
            Ok(t)
        }
    });
    match text.and_then(|pem| crate::crypto::keys::from_pem(&pem, 0).map(|_| pem).map_err(|e| e.to_string())) {
        Ok(pem) => Some(Secret::new(pem)),
        Err(e) => {
            v.err("backchannel.signing_key_file", format!("{}: {e}", path.display()));
            None
        }
    }
}
