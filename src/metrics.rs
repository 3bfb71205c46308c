//! Every Prometheus metric in one place, registered in the default registry (the one
//! pingora-prometheus serves, should anyone mount it) and served by `admin.rs`.
//!
//! Labels stay bounded: status classes, fixed outcome and operation names, never a
//! client-supplied string, a sid, a subject or a URL.

use std::sync::OnceLock;

use prometheus::{
    register_gauge, register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
};

/// Latency buckets from 100 µs to 30 s: proxying is sub-millisecond on loopback, slow upstreams take seconds.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Everything the gateway counts. Built once; `Metrics::get()` hands out the shared instance.
pub(crate) struct Metrics {
    /// Passthrough answers by status class (`2xx` … `5xx`), resolved per class once, so the
    /// per-request path hashes no labels.
    proxied_by_class: [IntCounter; 5],
    /// Passthrough time from request header to the last byte sent.
    pub(crate) request_duration: Histogram,
    /// end_session outcomes: redirect, logged_out, confirm, rejected, unavailable.
    pub(crate) logouts: IntCounterVec,
    /// end_session and confirmation time, from the request header until the answer is ready, by outcome.
    pub(crate) logout_duration: HistogramVec,
    /// Session store operations by name (`ping`, `put`, `get`, `end`, ...).
    pub(crate) store_duration: HistogramVec,
    /// Front-channel logout iframes rendered on pages.
    pub(crate) frontchannel_iframes: IntCounter,
    /// Requests the gateway could not proxy, by reason (`connect`, `timeout`, `other`).
    pub(crate) upstream_errors: IntCounterVec,
    /// Back-channel delivery attempts by result: success, retry, failed (final), gave_up.
    pub(crate) backchannel_deliveries: IntCounterVec,
    /// Notices queued, in flight or waiting for a retry (as last seen by this instance).
    pub(crate) backchannel_queue_depth: IntGauge,
    /// Time of one back-channel POST.
    pub(crate) backchannel_latency: Histogram,
    /// RFC 7009 revocations at the upstream after logouts, by result.
    pub(crate) upstream_revocations: IntCounterVec,
    /// What the gateway learned from proxied traffic, by kind.
    pub(crate) learned: IntCounterVec,
    /// Responses the gateway meant to learn from but could not read, by reason.
    pub(crate) learn_skipped: IntCounterVec,
    /// Valid ID tokens without a `sid` (OPs such as Glewlwyd's default), by where they were seen.
    pub(crate) without_sid: IntCounterVec,
    /// Client connections refused over `limits.max_connections`.
    pub(crate) connections_refused: IntCounter,
    /// Connections closed because a request header did not arrive within `limits.header_timeout`.
    pub(crate) header_timeouts: IntCounter,
    /// Requests refused by a limit, by what (`uri`, `headers`, `rate`).
    pub(crate) limited: IntCounterVec,
    /// Panics caught (each stays inside its own request or task).
    pub(crate) panics: IntCounter,
    /// Requests the edge refused or changed for a credential, by what it did.
    pub(crate) edge: IntCounterVec,
    /// Credentials the edge let through unchecked because the set was stale and the store did
    /// not answer (only where it does not fail closed), by kind.
    pub(crate) edge_unchecked: IntCounterVec,
    /// SIGHUP reloads by result (`ok`, `invalid`).
    pub(crate) config_reloads: IntCounterVec,
    /// Session store failures by reason (`replica_acks`: fewer replicas acknowledged a write
    /// that ends a session than `replica_acks` asks).
    pub(crate) store_errors: IntCounterVec,
    /// Certificate pairs of the gateway's own listeners loaded after start, by result.
    pub(crate) tls_reloads: IntCounterVec,
    /// 1 when `/readyz` would answer 200, else 0; evaluated on every `/readyz` and `/metrics`.
    pub(crate) ready: IntGauge,
    /// Front-channel iframes as their pages reported them: loaded, timeout.
    pub(crate) frontchannel_results: IntCounterVec,
    /// Global token revocation calls by result.
    pub(crate) global_revocations: IntCounterVec,
    /// Shared Signals SET deliveries by result: delivered, retried, refused, gave_up.
    pub(crate) ssf_deliveries: IntCounterVec,
    /// 1 when the session store answered the last readiness ping, else 0.
    pub(crate) store_up: IntGauge,
    /// Fetches of the upstream's signing keys (discovery and JWKS), by result (`ok`, `failed`).
    pub(crate) keys_refreshes: IntCounterVec,
    /// Unix time of the last successful fetch of the upstream's keys (0 until one succeeded).
    pub(crate) keys_last_success: Gauge,
}

/// `logout_gateway_edge_total{action}` values.
pub(crate) const EDGE_ACTIONS: [&str; 7] = [
    "invalid_token",
    "invalid_grant",
    "inactive",
    "cookie_stripped",
    "repeated_param",
    "unreadable_body",
    "unavailable",
];

static METRICS: OnceLock<Metrics> = OnceLock::new();

pub(crate) const LOGOUT_OUTCOMES: [&str; 5] = ["redirect", "logged_out", "confirm", "rejected", "unavailable"];
pub(crate) const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Metrics {
    pub(crate) fn get() -> &'static Metrics {
        METRICS.get_or_init(Metrics::register)
    }

    /// The metrics if they are registered; None while that is still under way (the panic hook
    /// uses this: a panic during registration must not wait for registration to finish).
    pub(crate) fn registered() -> Option<&'static Metrics> {
        METRICS.get()
    }

    // Registering a fixed, valid metric set in a fresh registry cannot fail; a failure is a
    // programming error caught by every test run, hence `expect` on these constants.
    #[allow(clippy::expect_used)]
    fn register() -> Metrics {
        let proxied_requests = register_int_counter_vec!(
            "logout_gateway_proxied_requests_total",
            "Requests proxied to the upstream, by response status class.",
            &["status_class"]
        )
        .expect("register proxied_requests");
        let proxied_by_class = STATUS_CLASSES.map(|c| proxied_requests.with_label_values(&[c]));
        // Which build is running: 1, labelled with the release and the commit.
        register_int_gauge_vec!(
            "logout_gateway_build_info",
            "The running build: always 1, labelled with the release and the commit.",
            &["version", "commit"]
        )
        .expect("register build_info")
        .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("LGW_COMMIT")])
        .set(1);
        let m = Metrics {
            proxied_by_class,
            request_duration: register_histogram!(
                "logout_gateway_request_duration_seconds",
                "Time from request header to the end of the response, for proxied requests.",
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register request_duration"),
            logouts: register_int_counter_vec!(
                "logout_gateway_logouts_total",
                "end_session requests by outcome.",
                &["outcome"]
            )
            .expect("register logouts"),
            logout_duration: register_histogram_vec!(
                "logout_gateway_logout_duration_seconds",
                "end_session and confirmation requests: time from the request header until the answer is ready \
                 (the session store's work included), by outcome.",
                &["outcome"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register logout_duration"),
            store_duration: register_histogram_vec!(
                "logout_gateway_session_store_duration_seconds",
                "Session store operation latency, by operation.",
                &["operation"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register store_duration"),
            frontchannel_iframes: register_int_counter!(
                "logout_gateway_frontchannel_iframes_total",
                "Front-channel logout iframes rendered."
            )
            .expect("register frontchannel_iframes"),
            upstream_errors: register_int_counter_vec!(
                "logout_gateway_upstream_errors_total",
                "Requests that could not be proxied, by reason.",
                &["reason"]
            )
            .expect("register upstream_errors"),
            backchannel_deliveries: register_int_counter_vec!(
                "logout_gateway_backchannel_deliveries_total",
                "Back-channel logout delivery attempts, by result.",
                &["result"]
            )
            .expect("register backchannel_deliveries"),
            backchannel_queue_depth: register_int_gauge!(
                "logout_gateway_backchannel_queue_depth",
                "Back-channel notices queued, in flight or scheduled for retry."
            )
            .expect("register backchannel_queue_depth"),
            backchannel_latency: register_histogram!(
                "logout_gateway_backchannel_delivery_seconds",
                "Duration of one back-channel logout POST.",
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register backchannel_latency"),
            upstream_revocations: register_int_counter_vec!(
                "logout_gateway_upstream_revocations_total",
                "Tokens of logged-out sessions revoked at the upstream (RFC 7009), by result.",
                &["result"]
            )
            .expect("register upstream_revocations"),
            learned: register_int_counter_vec!(
                "logout_gateway_learned_total",
                "Things learned from proxied traffic: sessions, refreshed tokens, registered clients, \
                 and tokens issued in already ended sessions (refused at once).",
                &["kind"]
            )
            .expect("register learned"),
            learn_skipped: register_int_counter_vec!(
                "logout_gateway_learn_skipped_total",
                "Responses not learned from: encoding (a content coding the gateway cannot decode), corrupt, \
                 too_large, unverified (an ID token that does not verify), no_cookie (an ID token without sid \
                 whose code was bound to no OP cookie).",
                &["reason"]
            )
            .expect("register learn_skipped"),
            without_sid: register_int_counter_vec!(
                "logout_gateway_id_tokens_without_sid_total",
                "Valid ID tokens that carry no sid: learned (the session is keyed by the browser's OP cookie \
                 and subject) or as a logout hint (the browser's own session of that subject ends).",
                &["seen"]
            )
            .expect("register without_sid"),
            connections_refused: register_int_counter!(
                "logout_gateway_connections_refused_total",
                "Client connections refused because limits.max_connections were open."
            )
            .expect("register connections_refused"),
            header_timeouts: register_int_counter!(
                "logout_gateway_header_timeouts_total",
                "Connections closed because a request header was not complete within limits.header_timeout."
            )
            .expect("register header_timeouts"),
            limited: register_int_counter_vec!(
                "logout_gateway_limited_requests_total",
                "Requests refused by a limit: uri (414), headers (431), rate (429), confirmations (503: the global cap \
                 on confirmation contexts), lookups (edge store lookups over their budget while the revocation set \
                 is stale).",
                &["limit"]
            )
            .expect("register limited"),
            panics: register_int_counter!(
                "logout_gateway_panics_total",
                "Panics caught; each stays inside its request or task. Should stay zero."
            )
            .expect("register panics"),
            edge: register_int_counter_vec!(
                "logout_gateway_edge_total",
                "Proxied requests the edge answered or changed because of a credential: invalid_token (401), \
                 invalid_grant (400), inactive (introspection), cookie_stripped, repeated_param (400), \
                 unreadable_body (400/411/413/415), unavailable (503: revocations could not be checked).",
                &["action"]
            )
            .expect("register edge"),
            edge_unchecked: register_int_counter_vec!(
                "logout_gateway_edge_unchecked_total",
                "Credentials passed on unchecked: the revocation set was stale and the store did not answer \
                 (bearer on paths that are not token, userinfo or introspection; OP cookies).",
                &["kind"]
            )
            .expect("register edge_unchecked"),
            config_reloads: register_int_counter_vec!(
                "logout_gateway_config_reloads_total",
                "Configuration reloads (SIGHUP): ok (applied), invalid (refused; the running config stays).",
                &["result"]
            )
            .expect("register config_reloads"),
            store_errors: register_int_counter_vec!(
                "logout_gateway_store_errors_total",
                "Session store failures by reason: replica_acks (a write that ends a session was not acknowledged by \
                 session_store.redis.replica_acks replicas in time; answered 503).",
                &["reason"]
            )
            .expect("register store_errors"),
            tls_reloads: register_int_counter_vec!(
                "logout_gateway_tls_reloads_total",
                "Certificate pairs of the https and mutual-TLS listeners read after start (file change or SIGHUP): \
                 ok (in use for new handshakes), invalid (refused; the previous pair stays).",
                &["result"]
            )
            .expect("register tls_reloads"),
            ready: register_int_gauge!(
                "logout_gateway_ready",
                "1 when the instance is ready (what /readyz answers 200 for), else 0; evaluated at each scrape."
            )
            .expect("register ready"),
            frontchannel_results: register_int_counter_vec!(
                "logout_gateway_frontchannel_results_total",
                "Front-channel logout iframes as the logout page reported them: loaded, or timeout (not loaded within \
                 end_session.frontchannel_timeout). Counted once per logout and RP.",
                &["result"]
            )
            .expect("register frontchannel_results"),
            global_revocations: register_int_counter_vec!(
                "logout_gateway_global_revocations_total",
                "Global token revocation calls by result: ended (every session of the subject ended, or already was), \
                 unknown (404), unauthorized (401), invalid (400/405/413/415), unavailable (503).",
                &["result"]
            )
            .expect("register global_revocations"),
            ssf_deliveries: register_int_counter_vec!(
                "logout_gateway_ssf_deliveries_total",
                "Shared Signals SET deliveries (push attempts, poll acknowledgements), by result.",
                &["result"]
            )
            .expect("register ssf_deliveries"),
            store_up: register_int_gauge!(
                "logout_gateway_session_store_up",
                "1 when the session store answered its last ping (each /readyz and /metrics), else 0."
            )
            .expect("register store_up"),
            keys_refreshes: register_int_counter_vec!(
                "logout_gateway_upstream_keys_refreshes_total",
                "Fetches of the upstream's discovery document and signing keys (JWKS), by result: ok, failed.",
                &["result"]
            )
            .expect("register keys_refreshes"),
            keys_last_success: register_gauge!(
                "logout_gateway_upstream_keys_last_success_timestamp_seconds",
                "Unix time of the last successful fetch of the upstream's signing keys; 0 until one succeeded."
            )
            .expect("register keys_last_success"),
        };
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...: the
        // prometheus crate's `process` feature registers its collector in the default registry.
        // Pre-create every bounded label value so dashboards see zeros, not gaps.
        for o in LOGOUT_OUTCOMES {
            m.logouts.with_label_values(&[o]);
            m.logout_duration.with_label_values(&[o]);
        }
        for r in ["success", "retry", "failed", "gave_up", "refused"] {
            m.backchannel_deliveries.with_label_values(&[r]);
        }
        for r in ["delivered", "retried", "refused", "gave_up"] {
            m.ssf_deliveries.with_label_values(&[r]);
        }
        for r in ["revoked", "failed", "skipped", "no_endpoint", "unreadable"] {
            m.upstream_revocations.with_label_values(&[r]);
        }
        for l in ["uri", "headers", "rate", "confirmations", "lookups"] {
            m.limited.with_label_values(&[l]);
        }
        for k in ["session", "refresh", "client", "client_refused", "ended_session"] {
            m.learned.with_label_values(&[k]);
        }
        for s in ["learned", "hint"] {
            m.without_sid.with_label_values(&[s]);
        }
        for r in ["encoding", "corrupt", "too_large", "unverified", "no_cookie"] {
            m.learn_skipped.with_label_values(&[r]);
        }
        for a in EDGE_ACTIONS {
            m.edge.with_label_values(&[a]);
        }
        for k in ["token", "cookie"] {
            m.edge_unchecked.with_label_values(&[k]);
        }
        m.store_errors.with_label_values(&["replica_acks"]);
        for r in ["ok", "invalid"] {
            m.config_reloads.with_label_values(&[r]);
            m.tls_reloads.with_label_values(&[r]);
        }
        for r in ["ok", "failed"] {
            m.keys_refreshes.with_label_values(&[r]);
        }
        for r in ["loaded", "timeout"] {
            m.frontchannel_results.with_label_values(&[r]);
        }
        for r in ["ended", "unknown", "unauthorized", "invalid", "unavailable"] {
            m.global_revocations.with_label_values(&[r]);
        }
        for r in ["connect", "timeout", "tls", "other"] {
            m.upstream_errors.with_label_values(&[r]);
        }
        m
    }

    /// Count one proxied answer with status `status`.
    pub(crate) fn count_proxied(&self, status: u16) {
        let i = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.proxied_by_class[i].inc();
    }
}

/// The exposition text of the default registry (format 0.0.4).
pub(crate) fn encode() -> Result<String, prometheus::Error> {
    use prometheus::Encoder;
    let enc = prometheus::TextEncoder::new();
    let mut buf = Vec::new();
    enc.encode(&prometheus::gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Seconds since the Unix epoch, for timestamp gauges.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
