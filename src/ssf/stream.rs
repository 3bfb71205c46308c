//! A stream's stored record and the SSF 1.0 stream configuration built from it and from a
//! receiver's request (create, update, replace), each field checked: the receiver-supplied ones
//! (`delivery`, `events_requested`, `description`, and here `aud`, which the receiver sets at
//! creation and which never changes), and the transmitter-supplied ones, which a request may
//! repeat only with their current values.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{POLL, PUSH, SESSION_REVOKED};

/// The events this transmitter sends on a stream (verification is sent when asked, whatever
/// was requested).
pub(crate) const SUPPORTED: [&str; 1] = [SESSION_REVOKED];
/// `min_verification_interval`, seconds.
pub(crate) const MIN_VERIFICATION_INTERVAL: u64 = 5;

/// A stream as stored (`session::Streams`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stream {
    pub(crate) id: String,
    pub(crate) receiver: String,
    /// A string or an array of strings: the SETs' `aud`.
    pub(crate) aud: Value,
    pub(crate) delivery: Delivery,
    pub(crate) events_requested: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// `enabled`, `paused` or `disabled`.
    pub(crate) status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub(crate) method: String,
    /// Push: the receiver's URL. Poll: absent in the record (the view shows the poll URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint_url: Option<String>,
    /// Push: the `Authorization` value to send, when the receiver gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) authorization_header: Option<String>,
}

impl Stream {
    pub(crate) fn is_push(&self) -> bool {
        self.delivery.method == PUSH
    }

    /// `events_delivered`: what was requested and is supported.
    pub(crate) fn delivered(&self) -> Vec<&'static str> {
        SUPPORTED.into_iter().filter(|e| self.events_requested.iter().any(|r| r == e)).collect()
    }

    pub(crate) fn delivers(&self, event: &str) -> bool {
        self.delivered().contains(&event)
    }

    /// The stream configuration the receiver sees. `base_url`: the transmitter's endpoints.
    pub(crate) fn view(&self, issuer: &str, base_url: &str) -> Value {
        let mut delivery = json!({ "method": self.delivery.method });
        if self.is_push() {
            delivery["endpoint_url"] = self.delivery.endpoint_url.clone().into();
            if let Some(a) = &self.delivery.authorization_header {
                delivery["authorization_header"] = a.clone().into();
            }
        } else {
            delivery["endpoint_url"] = format!("{base_url}/poll/{}", self.id).into();
        }
        let mut v = json!({
            "stream_id": self.id,
            "iss": issuer,
            "aud": self.aud,
            "delivery": delivery,
            "events_supported": SUPPORTED,
            "events_requested": self.events_requested,
            "events_delivered": self.delivered(),
            "min_verification_interval": MIN_VERIFICATION_INTERVAL,
        });
        if let Some(d) = &self.description {
            v["description"] = d.clone().into();
        }
        v
    }
}

/// What a create, update or replace request may say. Members are checked one by one; unknown
/// members are ignored, as SSF 1.0 asks of events it does not understand.
pub(crate) struct Change<'a> {
    pub(crate) body: &'a serde_json::Map<String, Value>,
    /// Absent members fall back to their defaults (create, replace) or stay (update).
    pub(crate) full: bool,
}

impl Change<'_> {
    /// Apply the request to `s` (a new stream's defaults, or the stored stream). Errors are
    /// fixed texts, so nothing of the request is reflected.
    pub(crate) fn apply(&self, s: &mut Stream, issuer: &str, created: bool) -> Result<(), &'static str> {
        let b = self.body;
        if b.get("iss").is_some_and(|i| i.as_str() != Some(issuer)) {
            return Err("iss is the transmitter's and does not match");
        }
        if b.get("events_supported").is_some_and(|e| e != &json!(SUPPORTED)) {
            return Err("events_supported is the transmitter's and does not match");
        }
        if b.get("events_delivered").is_some_and(|e| e != &json!(s.delivered())) {
            return Err("events_delivered is the transmitter's and does not match");
        }
        if b.get("min_verification_interval").is_some_and(|m| m.as_u64() != Some(MIN_VERIFICATION_INTERVAL)) {
            return Err("min_verification_interval is the transmitter's and does not match");
        }
        match b.get("aud") {
            Some(a) if created => s.aud = audience(a)?,
            Some(a) if a != &s.aud => return Err("aud cannot be changed"),
            _ => {}
        }
        match b.get("delivery") {
            Some(d) => s.delivery = delivery(d)?,
            None if self.full => {
                s.delivery = Delivery { method: POLL.into(), endpoint_url: None, authorization_header: None }
            }
            None => {}
        }
        match b.get("events_requested") {
            Some(e) => s.events_requested = events(e)?,
            None if self.full => s.events_requested = SUPPORTED.iter().map(|e| e.to_string()).collect(),
            None => {}
        }
        match b.get("description") {
            Some(Value::String(d)) if d.len() <= 256 && !d.chars().any(char::is_control) => {
                s.description = Some(d.clone())
            }
            Some(Value::Null) => s.description = None,
            Some(_) => return Err("description is a string of at most 256 characters without control characters"),
            None if self.full => s.description = None,
            None => {}
        }
        Ok(())
    }
}

fn audience(a: &Value) -> Result<Value, &'static str> {
    let ok =
        |s: &Value| s.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control));
    match a {
        Value::String(_) if ok(a) => Ok(a.clone()),
        Value::Array(list) if !list.is_empty() && list.len() <= 8 && list.iter().all(ok) => Ok(a.clone()),
        _ => Err("aud is a string or an array of at most 8 strings, each 1 to 256 characters"),
    }
}

fn events(e: &Value) -> Result<Vec<String>, &'static str> {
    let list = e.as_array().filter(|l| l.len() <= 32).ok_or("events_requested is an array of at most 32 URIs")?;
    list.iter()
        .map(|x| x.as_str().filter(|s| s.len() <= 512).map(String::from))
        .collect::<Option<Vec<_>>>()
        .ok_or("events_requested is an array of URIs")
}

fn delivery(d: &Value) -> Result<Delivery, &'static str> {
    let method = d.get("method").and_then(Value::as_str).unwrap_or(POLL);
    let url = d.get("endpoint_url");
    let auth = d.get("authorization_header");
    match method {
        POLL if url.is_some_and(|u| !u.is_null()) => Err("a poll stream's endpoint_url is the transmitter's"),
        POLL if auth.is_some_and(|a| !a.is_null()) => Err("authorization_header is for push streams"),
        POLL => Ok(Delivery { method: POLL.into(), endpoint_url: None, authorization_header: None }),
        PUSH => {
            let url = url.and_then(Value::as_str).ok_or("a push stream needs delivery.endpoint_url")?;
            push_url(url)?;
            let authorization_header = match auth {
                None | Some(Value::Null) => None,
                Some(Value::String(a))
                    if !a.is_empty() && a.len() <= 1024 && a.bytes().all(|b| (0x20..=0x7e).contains(&b)) =>
                {
                    Some(a.clone())
                }
                Some(_) => return Err("authorization_header is 1 to 1024 printable characters"),
            };
            Ok(Delivery { method: PUSH.into(), endpoint_url: Some(url.to_string()), authorization_header })
        }
        _ => Err("unsupported delivery method: urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)"),
    }
}

/// A push URL: absolute https without fragment or credentials; http only to a loopback host.
fn push_url(s: &str) -> Result<(), &'static str> {
    const BAD: &str =
        "delivery.endpoint_url must be an https URL without fragment or user info (http only on loopback)";
    let u = url::Url::parse(s).map_err(|_| BAD)?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let scheme_ok = u.scheme() == "https" || (u.scheme() == "http" && loopback);
    if !scheme_ok || u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() || s.len() > 2048 {
        return Err(BAD);
    }
    Ok(())
}

/// A stream with its defaults, before a create request is applied.
pub(crate) fn fresh(id: String, receiver: &str) -> Stream {
    Stream {
        id,
        receiver: receiver.to_string(),
        aud: Value::String(receiver.to_string()),
        delivery: Delivery { method: POLL.into(), endpoint_url: None, authorization_header: None },
        events_requested: SUPPORTED.iter().map(|e| e.to_string()).collect(),
        description: None,
        status: "enabled".into(),
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(body: Value, full: bool, created: bool) -> Result<Stream, &'static str> {
        let mut s = fresh("id".into(), "crm");
        let body = body.as_object().cloned().unwrap();
        Change { body: &body, full }.apply(&mut s, "https://op.example", created)?;
        Ok(s)
    }

    #[test]
    fn a_create_takes_the_receivers_members_and_checks_the_transmitters() {
        let s = apply(json!({"delivery": {"method": PUSH, "endpoint_url": "https://r.example/ev", "authorization_header": "Bearer x"},
            "events_requested": [SESSION_REVOKED, "urn:other"], "description": "d", "aud": ["a", "b"]}), true, true)
        .unwrap();
        assert!(s.is_push());
        assert_eq!(s.delivered(), [SESSION_REVOKED]);
        assert_eq!(s.aud, json!(["a", "b"]));
        let poll = apply(json!({}), true, true).unwrap();
        assert_eq!(poll.delivery.method, POLL);
        assert_eq!(poll.aud, json!("crm"));
        assert_eq!(
            poll.view("https://op.example", "https://op.example/ssf")["delivery"]["endpoint_url"],
            "https://op.example/ssf/poll/id"
        );
        for bad in [
            json!({"iss": "https://evil.example"}),
            json!({"events_delivered": ["urn:x"]}),
            json!({"events_supported": []}),
            json!({"min_verification_interval": 0}),
            json!({"aud": 5}),
            json!({"aud": []}),
            json!({"delivery": {"method": "urn:x"}}),
            json!({"delivery": {"method": POLL, "endpoint_url": "https://r.example"}}),
            json!({"delivery": {"method": PUSH}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "http://r.example/ev"}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://u:p@r.example/ev"}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://r.example/ev#f"}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://r.example/ev", "authorization_header": "a\r\nX-Evil: 1"}}),
            json!({"events_requested": "x"}),
            json!({"events_requested": [1]}),
            json!({"description": "a\u{0}b"}),
        ] {
            assert!(apply(bad.clone(), true, true).is_err(), "{bad}");
        }
        assert!(
            apply(json!({"delivery": {"method": PUSH, "endpoint_url": "http://127.0.0.1:9/ev"}}), true, true).is_ok()
        );
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name_and_aud_never_changes() {
        let mut s = apply(json!({"description": "d", "aud": "x"}), true, true).unwrap();
        let body = json!({"events_requested": []}).as_object().cloned().unwrap();
        Change { body: &body, full: false }.apply(&mut s, "https://op.example", false).unwrap();
        assert_eq!(s.description.as_deref(), Some("d"));
        assert!(s.delivered().is_empty());
        let body = json!({"aud": "y"}).as_object().cloned().unwrap();
        assert!(Change { body: &body, full: false }.apply(&mut s, "https://op.example", false).is_err());
        let body = json!({"aud": "x"}).as_object().cloned().unwrap();
        Change { body: &body, full: true }.apply(&mut s, "https://op.example", false).unwrap();
        assert_eq!(s.description, None, "a replace resets what it does not name");
        assert_eq!(s.delivered(), [SESSION_REVOKED]);
    }
}
