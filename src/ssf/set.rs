//! Security Event Tokens (RFC 8417 as SSF 1.0 profiles them: `typ: secevent+jwt`, no `sub`,
//! no `exp`, one event, the subject in `sub_id`) and subjects (RFC 9493): the keys a receiver's
//! subject is stored under and the keys an ended session is looked up by.

use crate::crypto::keys::SigningKey;
use crate::session::SessionView;

/// The subject formats a receiver may add, as the store keys them:
/// `{"format": "iss_sub"}` of this issuer covers every session of that user (`u:<sub>`);
/// `{"format": "complex"}` with `user` (iss_sub) and/or `session` (opaque sid) covers the
/// sessions both name (`u:`, `s:<sid>`, `us:<sub>\n<sid>`). Other members of a complex subject
/// (tenant, device, …) are absent from the gateway's events, and by SSF 1.0's matching rules an
/// absent member matches; they are ignored. Errors are fixed texts.
pub(crate) fn subject_key(v: &serde_json::Value, issuer: &str) -> Result<String, &'static str> {
    let format = v.get("format").and_then(|f| f.as_str()).ok_or("the subject has no format")?;
    match format {
        "iss_sub" => Ok(format!("u:{}", iss_sub(v, issuer)?)),
        "complex" => {
            let user = v.get("user").map(|u| iss_sub(u, issuer)).transpose()?;
            let session = v.get("session").map(session_id).transpose()?;
            match (user, session) {
                (Some(u), Some(s)) => Ok(format!("us:{u}\n{s}")),
                (Some(u), None) => Ok(format!("u:{u}")),
                (None, Some(s)) => Ok(format!("s:{s}")),
                (None, None) => Err("a complex subject needs user (iss_sub) or session (opaque)"),
            }
        }
        _ => Err("unsupported subject format: use iss_sub, or complex with user and/or session"),
    }
}

fn iss_sub(v: &serde_json::Value, issuer: &str) -> Result<String, &'static str> {
    if v.get("format").and_then(|f| f.as_str()) != Some("iss_sub") {
        return Err("a user subject is an iss_sub");
    }
    if v.get("iss").and_then(|f| f.as_str()) != Some(issuer) {
        return Err("the subject's iss is not this provider's issuer");
    }
    plain(v.get("sub").and_then(|f| f.as_str()))
}

fn session_id(v: &serde_json::Value) -> Result<String, &'static str> {
    if v.get("format").and_then(|f| f.as_str()) != Some("opaque") {
        return Err("a session subject is opaque");
    }
    plain(v.get("id").and_then(|f| f.as_str()))
}

/// 1 to 256 printable ASCII characters.
fn plain(s: Option<&str>) -> Result<String, &'static str> {
    match s {
        Some(s) if !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x20..=0x7e).contains(&b)) => {
            Ok(s.to_string())
        }
        _ => Err("a subject's identifier is 1 to 256 printable characters"),
    }
}

/// The keys under which streams covering `view` hold subjects: its user, each of its sids (the
/// primary one and each client's), and each pair.
pub(crate) fn event_keys(view: &SessionView) -> Vec<String> {
    let mut sids: Vec<&str> = vec![view.sid.as_str()];
    for s in view.client_sids.values().filter(|s| !s.is_empty()) {
        if !sids.contains(&s.as_str()) {
            sids.push(s);
        }
    }
    let mut keys = Vec::new();
    if !view.sub.is_empty() {
        keys.push(format!("u:{}", view.sub));
    }
    for sid in sids {
        keys.push(format!("s:{sid}"));
        if !view.sub.is_empty() {
            keys.push(format!("us:{}\n{sid}", view.sub));
        }
    }
    keys
}

/// A session-revoked SET's `sub_id`: the user (iss_sub) and the session (opaque sid).
pub(crate) fn session_subject(issuer: &str, sub: &str, sid: &str) -> serde_json::Value {
    let mut v = serde_json::json!({ "format": "complex", "session": { "format": "opaque", "id": sid } });
    if !sub.is_empty() {
        v["user"] = serde_json::json!({ "format": "iss_sub", "iss": issuer, "sub": sub });
    }
    v
}

/// Sign one SET.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign(
    key: &SigningKey,
    issuer: &str,
    aud: &serde_json::Value,
    jti: &str,
    sub_id: serde_json::Value,
    event_type: &str,
    event: serde_json::Value,
    txn: Option<&str>,
) -> Result<String, String> {
    let mut claims = serde_json::json!({
        "iss": issuer,
        "aud": aud,
        "iat": super::now_secs(),
        "jti": jti,
        "sub_id": sub_id,
        "events": { event_type: event },
    });
    if let Some(t) = txn {
        claims["txn"] = t.into();
    }
    let mut h = jsonwebtoken::Header::new(key.alg);
    h.typ = Some("secevent+jwt".into());
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, &claims, &key.key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://op.example";

    #[test]
    fn subjects_are_keyed_by_what_they_name_and_others_are_refused() {
        let ok = |v| subject_key(&v, ISS).unwrap();
        assert_eq!(ok(json!({"format": "iss_sub", "iss": ISS, "sub": "alice"})), "u:alice");
        let user = json!({"format": "iss_sub", "iss": ISS, "sub": "alice"});
        let session = json!({"format": "opaque", "id": "sid-1"});
        assert_eq!(ok(json!({"format": "complex", "user": user})), "u:alice");
        assert_eq!(ok(json!({"format": "complex", "session": session})), "s:sid-1");
        assert_eq!(ok(json!({"format": "complex", "user": user, "session": session, "tenant": {}})), "us:alice\nsid-1");
        for bad in [
            json!({"format": "iss_sub", "iss": "https://other.example", "sub": "alice"}),
            json!({"format": "iss_sub", "iss": ISS}),
            json!({"format": "iss_sub", "iss": ISS, "sub": ""}),
            json!({"format": "iss_sub", "iss": ISS, "sub": "a\nb"}),
            json!({"format": "iss_sub", "iss": ISS, "sub": "x".repeat(257)}),
            json!({"format": "iss_sub", "iss": ISS, "sub": 7}),
            json!({"format": "email", "email": "a@example.com"}),
            json!({"format": "opaque", "id": "alice"}),
            json!({"format": "complex"}),
            json!({"format": "complex", "session": {"format": "email", "email": "x"}}),
            json!({"format": "complex", "user": {"format": "opaque", "id": "alice"}}),
            json!({"sub": "alice"}),
            json!("alice"),
        ] {
            assert!(subject_key(&bad, ISS).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_session_is_looked_up_by_its_user_every_sid_and_each_pair() {
        let view = SessionView {
            sid: "p".into(),
            sub: "alice".into(),
            clients: vec!["a".into(), "b".into(), "c".into()],
            client_sids: [("a".into(), "p".into()), ("b".into(), "q".into()), ("c".into(), String::new())].into(),
            status: crate::session::Status::Ended,
            sealed: Vec::new(),
        };
        assert_eq!(event_keys(&view), ["u:alice", "s:p", "us:alice\np", "s:q", "us:alice\nq"]);
    }
}
