//! Dynamic client registration through the gateway: the upstream's answer teaches the gateway a
//! client's logout metadata (shared through Redis with every instance); proxy.yaml wins; a
//! deletion forgets; metadata that breaks the client rules is not learned.

use std::time::Duration;

use crate::harness::{client, eventually, Gateway, GatewayOpts, Redis};
use crate::logout::{iframes, Env};

fn register(e: &Env, metadata: serde_json::Value) -> reqwest::blocking::Response {
    client()
        .post(e.gw.url("/reg"))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .unwrap()
}

/// A logout of session `sid` (subject U-dyn) with a valid hint for `aud`, to `uri`.
fn logout_as(e: &Env, gw: &Gateway, aud: &str, sid: &str, uri: &str) -> reqwest::blocking::Response {
    let hint = crate::tokens::hint(&e.iss, aud, "U-dyn", sid);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &hint)
        .append_pair("post_logout_redirect_uri", uri)
        .append_pair("state", "st")
        .finish();
    client().get(gw.url(&format!("/session/end?{q}"))).send().unwrap()
}

#[test]
fn a_client_registered_through_the_gateway_gets_its_iframe_and_redirect_on_every_instance() {
    let e = crate::logout::env_opts(Some(Redis::start()), |_| {});
    eventually("discovery fetched", Duration::from_secs(10), || {
        let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        v.get("registration_endpoint").is_some().then_some(())
    });
    e.put("S-dyn1", "U-dyn", &["dyn1"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "dyn1", "S-dyn1", "https://dyn.example.org/bye").status(), 400, "unknown client");

    let metadata = serde_json::json!({
        "client_name": "dyn1",
        "redirect_uris": ["https://dyn.example.org/cb"],
        "post_logout_redirect_uris": ["https://dyn.example.org/bye"],
        "frontchannel_logout_uri": "https://dyn.example.org/fc",
        "frontchannel_logout_session_required": true,
    });
    let r = register(&e, metadata);
    assert_eq!(r.status(), 201);
    let answer: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(answer["client_secret"], "registered-secret", "the registration answer passes untouched");
    let page = eventually("dyn1 learned", Duration::from_secs(10), || {
        let r = logout_as(&e, &e.gw, "dyn1", "S-dyn1", "https://dyn.example.org/bye");
        (r.status() == 200).then(|| r.text().unwrap())
    });
    let frames = iframes(&page);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].starts_with("https://dyn.example.org/fc?iss=") && frames[0].ends_with("&sid=S-dyn1"));
    let next = crate::logout::attr(&page, "id=\"continue\"", "href");
    assert_eq!(next.as_deref(), Some("https://dyn.example.org/bye?state=st"));

    // Another instance on the same Redis knows the client too.
    let second = Gateway::start(&GatewayOpts { issuer: Some(e.iss.clone()), ..e.opts.clone() });
    e.put("S-dyn2", "U-dyn", &["dyn1"], &[]);
    let r = logout_as(&e, &second, "dyn1", "S-dyn2", "https://dyn.example.org/bye");
    assert_eq!(r.status(), 200);
    assert_eq!(iframes(&r.text().unwrap()).len(), 1);
    // Only a registered URI, byte for byte.
    e.put("S-dyn3", "U-dyn", &["dyn1"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "dyn1", "S-dyn3", "https://dyn.example.org/bye/").status(), 400);

    // RFC 7592 deletion: the client is forgotten.
    let r = client().delete(e.gw.url("/reg/dyn1")).send().unwrap();
    assert_eq!(r.status(), 204);
    eventually("dyn1 forgotten", Duration::from_secs(10), || {
        (logout_as(&e, &e.gw, "dyn1", "S-dyn3", "https://dyn.example.org/bye").status() == 400).then_some(())
    });
}

#[test]
fn proxy_yaml_wins_and_bad_metadata_is_not_learned() {
    let e = crate::logout::env();
    eventually("discovery fetched", Duration::from_secs(10), || {
        let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        v.get("registration_endpoint").is_some().then_some(())
    });
    let learned = || e.gw.metric("logout_gateway_learned_total{kind=\"client\"}");
    // A registration answer naming a proxy.yaml client changes nothing.
    assert_eq!(
        register(
            &e,
            serde_json::json!({"client_name": "rp-c", "post_logout_redirect_uris": ["https://evil.example/x"]})
        )
        .status(),
        201
    );
    // Metadata that proxy.yaml would refuse (a javascript: front-channel URI, http off loopback).
    for (name, bad) in [
        ("bad1", serde_json::json!({"frontchannel_logout_uri": "javascript:alert(1)"})),
        ("bad2", serde_json::json!({"post_logout_redirect_uris": ["http://rp.example.org/bye"]})),
        ("bad3", serde_json::json!({"backchannel_logout_uri": "https://rp.example.org/bc#frag"})),
    ] {
        let mut m = bad.clone();
        m["client_name"] = name.into();
        assert_eq!(register(&e, m).status(), 201);
    }
    // A good one afterwards, to know the bad ones were processed (in order, same connection pool).
    let ok = serde_json::json!({"client_name": "good", "post_logout_redirect_uris": ["https://good.example.org/bye"]});
    assert_eq!(register(&e, ok).status(), 201);
    eventually("good learned", Duration::from_secs(10), || (learned() >= 1.0).then_some(()));
    assert_eq!(learned(), 1.0, "only the good client was learned");
    e.put("S-c", "U-dyn", &["rp-c"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "rp-c", "S-c", "https://evil.example/x").status(), 400, "proxy.yaml wins");
    for name in ["bad1", "bad2", "bad3"] {
        e.put(&format!("S-{name}"), "U-dyn", &[name], &[]);
        assert_eq!(logout_as(&e, &e.gw, name, &format!("S-{name}"), "https://rp.example.org/bye").status(), 400);
    }
    eventually("the three refusals logged", Duration::from_secs(10), || {
        (e.gw.log().matches("registered client not learned").count() == 3).then_some(())
    });
    assert_eq!(learned(), 1.0, "still only the good client");
}
