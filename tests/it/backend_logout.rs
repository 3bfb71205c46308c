//! RP back-end logout by refresh token (Keycloak's form): a client POSTs its credentials and
//! a refresh token to the end_session path; the session ends, its RPs are notified, and the
//! answer is 204. Every way to get it wrong is refused without ending anything.

use std::time::Duration;

use crate::backchannel::posts;
use crate::harness::{client, eventually, Redis};
use crate::logout::{env_opts, Env};
use crate::upstream::Upstream;

/// A gateway on Redis: rp-c is confidential (secret `rp-c-secret`) with a back-channel URI on
/// `rp`; rp-a is public (`revocation_auth: none`).
fn env(rp: &Upstream) -> Env {
    let e = env_opts(Some(Redis::start()), |o| {
        let c = o.config.clients.get_mut("rp-c").unwrap();
        c.client_secret = Some("rp-c-secret".into());
        c.backchannel_logout_uri = Some(format!("http://127.0.0.1:{}/status/204", rp.addr.port()));
        o.config.clients.get_mut("rp-a").unwrap().revocation_auth = Some("none".into());
        o.config.backchannel.retry_initial = "200ms".into();
        o.config.backchannel.poll_interval = "50ms".into();
    });
    // The token endpoint is known from discovery: learning starts once it was fetched.
    crate::learning::wait_for_discovery(&e);
    e
}

/// Redeem `code` for `client` at the token endpoint through the gateway; wait until learned.
fn learn(e: &Env, code: &str, client_id: &str) {
    let r = client()
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={code}&client_id={client_id}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("session learned", Duration::from_secs(10), || {
        (e.status(&format!("sid-{code}")).as_deref() == Some("active")).then_some(())
    });
}

fn backend(e: &Env, body: &str, basic: Option<(&str, &str)>) -> reqwest::blocking::Response {
    let mut rq = client()
        .post(e.gw.url("/session/end"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some((u, p)) = basic {
        rq = rq.basic_auth(u, Some(p));
    }
    rq.send().unwrap()
}

fn error_of(r: reqwest::blocking::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    (status, v["error"].as_str().unwrap_or("").to_string())
}

#[test]
fn a_confidential_client_ends_its_session_with_its_refresh_token_and_204() {
    let rp = Upstream::start();
    let e = env(&rp);
    learn(&e, "bk1", "rp-c");
    let active = |sid: &str| e.status(sid).as_deref() == Some("active");
    // Wrong secret, no client, a GET, another client's token, an unknown token: refused, nothing ends.
    let wrong = backend(&e, "client_id=rp-c&client_secret=nope&refresh_token=rt-bk1", None);
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"logout\"");
    assert_eq!(error_of(wrong), (401, "invalid_client".into()));
    assert_eq!(error_of(backend(&e, "refresh_token=rt-bk1", None)), (400, "invalid_request".into()));
    assert_eq!(
        error_of(backend(&e, "client_id=rp-b&client_secret=x&refresh_token=rt-bk1", None)).0,
        401,
        "rp-b has no credentials"
    );
    let get = client().get(e.gw.url("/session/end?client_id=rp-c&client_secret=rp-c-secret&refresh_token=rt-bk1"));
    assert_eq!(error_of(get.send().unwrap()), (400, "invalid_request".into()), "never from a URL");
    assert_eq!(error_of(backend(&e, "client_id=rp-a&refresh_token=rt-bk1", None)), (400, "invalid_grant".into()));
    let unknown = backend(&e, "client_id=rp-c&client_secret=rp-c-secret&refresh_token=rt-never", None);
    assert_eq!(error_of(unknown), (400, "invalid_grant".into()));
    let mismatch = backend(&e, "client_id=rp-a&refresh_token=rt-bk1", Some(("rp-c", "rp-c-secret")));
    assert_eq!(mismatch.status(), 401, "Basic and form name different clients");
    assert!(active("sid-bk1"));
    assert!(posts(&rp, "/status/").is_empty());

    // The real thing: 204, no body; the session ended, its RP told, its tokens refused.
    let r = backend(&e, "client_id=rp-c&client_secret=rp-c-secret&refresh_token=rt-bk1", None);
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.bytes().unwrap().is_empty());
    assert_eq!(e.status("sid-bk1").as_deref(), Some("ended"));
    eventually("the back-channel notice", Duration::from_secs(10), || {
        (!posts(&rp, "/status/").is_empty()).then_some(())
    });
    let refresh = client()
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=rt-bk1&client_id=rp-c")
        .send()
        .unwrap();
    assert_eq!(refresh.status(), 400, "the refresh token is refused at the edge");
    // Again: already ended is not an error.
    assert_eq!(backend(&e, "client_id=rp-c&client_secret=rp-c-secret&refresh_token=rt-bk1", None).status(), 204);
    assert_eq!(e.gw.metric("logout_gateway_logouts_total{outcome=\"logged_out\"}"), 2.0);

    // HTTP Basic (form-encoded credentials) works the same.
    learn(&e, "bk2", "rp-c");
    assert_eq!(backend(&e, "refresh_token=rt-bk2", Some(("rp-c", "rp-c-secret"))).status(), 204);
    assert_eq!(e.status("sid-bk2").as_deref(), Some("ended"));
}

#[test]
fn a_public_client_ends_its_session_with_the_refresh_token_alone() {
    let rp = Upstream::start();
    let e = env(&rp);
    learn(&e, "pub1", "rp-a");
    // A secret where none is configured is as wrong as a missing one where one is.
    assert_eq!(error_of(backend(&e, "client_id=rp-a&client_secret=x&refresh_token=rt-pub1", None)).0, 401);
    assert_eq!(backend(&e, "client_id=rp-a&refresh_token=rt-pub1", None).status(), 204);
    assert_eq!(e.status("sid-pub1").as_deref(), Some("ended"));
    // A confidential client may not skip its secret.
    learn(&e, "pub2", "rp-c");
    assert_eq!(error_of(backend(&e, "client_id=rp-c&refresh_token=rt-pub2", None)).0, 401);
    assert_eq!(e.status("sid-pub2").as_deref(), Some("active"));
}
