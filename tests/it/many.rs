//! Many gateways, one state: three instances on one Redis behind (imagined) round-robin. A
//! session learned at one is confirmed-out through the other two (the confirmation page from
//! one, the form posted to another), its OP cookie is refused at the first, and every instance
//! publishes the same logout-token keys. (Enforcement across instances, learned clients and
//! a killed instance's notices have their own tests: `revocation_set`, `registration`,
//! `backchannel`.)

use std::time::Duration;

use crate::harness::{client, eventually, Gateway, Redis};
use crate::learning::{code_flow, prompt_none_fails, wait_for_discovery};
use crate::logout::{attr, env_opts};
use crate::revocation_set::second;

fn gateway_kids(gw: &Gateway) -> Vec<String> {
    let r = client().get(gw.url("/jwks")).send().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let mut kids: Vec<String> =
        v["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str().map(String::from)).collect();
    kids.sort();
    kids
}

#[test]
fn three_instances_share_sessions_confirmations_enforcement_and_keys() {
    let e = env_opts(Some(Redis::start()), |o| {
        // A back-channel client, so the instances need (and share) a logout-token key.
        o.config.clients.get_mut("rp-c").unwrap().backchannel_logout_uri = Some("http://127.0.0.1:9/bc".into());
    });
    wait_for_discovery(&e);
    let (b, c) = (second(&e), second(&e));
    let cookie = code_flow(&e, "many", "many_1");
    let status = |gw: &Gateway| {
        let r = client().get(gw.admin("/sessions/sid-many_1")).send().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap_or_default();
        v["status"].as_str().map(String::from)
    };
    eventually("learned at A, known at B", Duration::from_secs(10), || {
        (status(&b).as_deref() == Some("active")).then_some(())
    });
    assert!(!prompt_none_fails(&e, &cookie), "the OP session works through A");

    // The confirmation page from B, the form posted to C.
    let page = client().get(b.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(page.status(), 200);
    let binder = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let token = attr(&page.text().unwrap(), "name=\"token\"", "value").unwrap();
    let r = client()
        .post(c.url("/session/end/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("{binder}; {cookie}"))
        .body(format!("token={token}&action=logout"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "confirmed at another instance than the page's");
    assert_eq!(status(&e.gw).as_deref(), Some("ended"));
    eventually("A refuses the OP cookie", Duration::from_secs(5), || prompt_none_fails(&e, &cookie).then_some(()));

    // One key set for every instance (generated once, kept in Redis).
    let kids = eventually("keys published", Duration::from_secs(10), || {
        let k = gateway_kids(&e.gw);
        (k.len() > 2).then_some(k)
    });
    assert_eq!(gateway_kids(&b), kids);
    assert_eq!(gateway_kids(&c), kids);
}
