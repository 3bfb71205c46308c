//! GW-01: end_session paths (and their /confirm) are answered by the gateway in every
//! spelling; nothing else is.

use crate::harness::{client, Gateway, GatewayOpts};
use crate::upstream::Upstream;

#[test]
fn gw01_no_spelling_of_end_session_reaches_the_upstream() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let c = client();
    for path in [
        "/session/end",
        "/session/end/",
        "/Session/End",
        "/session/%65nd",
        "/session%2Fend",
        "/session/end;jsessionid=x",
        "//session/end",
        "/./session/end",
        "/x/../session/end",
        "/oxauth/restv1/end_session?id_token_hint=x",
        "/session/end/confirm",
        "/SESSION//end/./confirm/",
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let r = c.request(method.clone(), gw.url(path)).send().unwrap();
            assert!(r.headers().get("x-upstream").is_none(), "{method} {path} was proxied");
            assert_eq!(r.headers()["cache-control"], "no-cache, no-store", "{path}");
            assert_eq!(r.headers()["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(r.headers()["pragma"], "no-cache", "{path}");
        }
    }
    assert_eq!(up.count_app(), 0, "an end_session spelling reached the upstream: {:?}", up.seen());

    // Neighbours are proxied.
    for path in ["/session/endX", "/session", "/token"] {
        assert_eq!(c.get(gw.url(path)).send().unwrap().status(), 200, "{path}");
    }
    assert_eq!(up.count_app(), 3);
}
