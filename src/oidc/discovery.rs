//! What the gateway reads from the upstream's discovery document besides endpoint paths: where
//! it publishes the merged keys, and whether the OP's ID tokens are likely to carry a `sid`.

use url::Url;

/// The path on the gateway's public origin where RPs find the keys (GW-04): the path of the
/// discovery document's `jwks_uri`, wherever the keys were fetched from (`jwks.uri` may name
/// the upstream's internal address, and an OP behind a proxy may name its own); without
/// discovery, the path of the keys URL when it is on the issuer's origin.
pub(super) fn published_jwks_path(
    discovery: Option<&serde_json::Value>,
    fetched: &Url,
    issuer: &Url,
) -> Option<String> {
    let advertised = discovery.and_then(|d| d.get("jwks_uri")?.as_str()).and_then(|u| Url::parse(u).ok());
    match advertised {
        Some(u) => Some(u.path().to_string()),
        None => (fetched.origin() == issuer.origin()).then(|| fetched.path().to_string()),
    }
}

/// Said once, when discovery is first fetched: an OP that does not list `sid` among its claims
/// (or says it has no session-aware logout) likely issues ID tokens without sid; the gateway
/// then keys their sessions by the browser's OP cookie (see `learn`), and counts each such token
/// in `logout_gateway_id_tokens_without_sid_total`.
pub(super) fn say_whether_ops_give_sid(doc: &serde_json::Value) {
    let listed = doc.get("claims_supported").and_then(|c| c.as_array()).map(|a| a.iter().any(|c| c == "sid"));
    let sessions = ["frontchannel_logout_session_supported", "backchannel_logout_session_supported"]
        .iter()
        .any(|k| doc.get(*k) == Some(&serde_json::Value::Bool(true)));
    if listed == Some(false) && !sessions {
        tracing::warn!(
            "the upstream's discovery lists no `sid` claim: its ID tokens probably carry none; sessions are then \
             keyed by the browser's OP cookie and subject, and logout tokens name the subject only"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_keys_path_is_discoverys_wherever_the_keys_come_from() {
        let issuer = Url::parse("https://login.example.com").unwrap();
        let internal = Url::parse("http://10.0.0.5:8080/oauth2/jwks").unwrap();
        let disc = serde_json::json!({"jwks_uri": "https://login.example.com/oauth2/certs"});
        assert_eq!(published_jwks_path(Some(&disc), &internal, &issuer).as_deref(), Some("/oauth2/certs"));
        // An OP that names its own internal address in discovery: the path, on the gateway.
        let own = serde_json::json!({"jwks_uri": "http://10.0.0.5:8080/keys"});
        assert_eq!(published_jwks_path(Some(&own), &internal, &issuer).as_deref(), Some("/keys"));
        // No discovery: only a keys URL on the issuer's origin names a path there.
        assert_eq!(published_jwks_path(None, &internal, &issuer), None);
        let on_issuer = Url::parse("https://login.example.com/jwks").unwrap();
        assert_eq!(published_jwks_path(None, &on_issuer, &issuer).as_deref(), Some("/jwks"));
    }
}
