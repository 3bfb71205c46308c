//! The SSF 1.0 stream management API, per receiver: configuration (create, read, update,
//! replace, delete), status, add and remove subject, verification, and the poll endpoint. Every
//! call carries the receiver's bearer token (checked by the caller before the body is read); a
//! stream of another receiver is 404, as an unknown one. Error descriptions are fixed texts.

use serde_json::{json, Value};

use super::stream::{fresh, Change, MIN_VERIFICATION_INTERVAL};
use super::{Stream, Transmitter, VERIFICATION};
use crate::config::SsfReceiver;
use crate::session::StoreError;

/// Which endpoint below `ssf.path` a (canonical, lower-case) path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Streams,
    Status,
    AddSubject,
    RemoveSubject,
    Verify,
    Poll(String),
}

impl Endpoint {
    /// `rest`: the canonical path below `ssf.path` (with its leading '/').
    pub(crate) fn of(rest: &str) -> Option<Endpoint> {
        Some(match rest {
            "/streams" => Endpoint::Streams,
            "/status" => Endpoint::Status,
            "/subjects:add" => Endpoint::AddSubject,
            "/subjects:remove" => Endpoint::RemoveSubject,
            "/verify" => Endpoint::Verify,
            _ => {
                let id = rest.strip_prefix("/poll/")?;
                if !is_stream_id(id) {
                    return None;
                }
                Endpoint::Poll(id.to_string())
            }
        })
    }
}

/// Stream ids are 32 lower-case hex digits (so path case folding cannot change one).
fn is_stream_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An answer: status, JSON body (none for 200/204 without one), and `Allow` for a 405.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiReply {
    pub(crate) status: u16,
    pub(crate) body: Option<String>,
    pub(crate) allow: Option<&'static str>,
}

impl ApiReply {
    pub(crate) fn json(status: u16, v: Value) -> ApiReply {
        ApiReply { status, body: Some(v.to_string()), allow: None }
    }

    fn empty(status: u16) -> ApiReply {
        ApiReply { status, body: None, allow: None }
    }

    fn error(status: u16, code: &str, description: &str) -> ApiReply {
        ApiReply::json(status, json!({ "error": code, "error_description": description }))
    }
}

pub(crate) fn bad(description: &str) -> ApiReply {
    ApiReply::error(400, "invalid_request", description)
}

fn not_found() -> ApiReply {
    ApiReply::error(404, "not_found", "no stream with this stream_id for this receiver")
}

fn not_allowed(allow: &'static str) -> ApiReply {
    ApiReply { allow: Some(allow), ..ApiReply::error(405, "invalid_request", "method not allowed here") }
}

pub(crate) fn unavailable(e: &StoreError) -> ApiReply {
    tracing::warn!(error = %e, "SSF request not completed: the store did not answer");
    ApiReply::error(503, "temporarily_unavailable", "the stream store did not answer; try again")
}

/// The request the HTTP side hands over.
pub(crate) struct Call<'a> {
    pub(crate) method: &'a str,
    pub(crate) query: &'a str,
    pub(crate) body: &'a [u8],
}

impl Call<'_> {
    fn object(&self) -> Result<serde_json::Map<String, Value>, ApiReply> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad("the body must be one JSON object")),
        }
    }

    /// `stream_id` from the query (exactly once), when present.
    fn query_id(&self) -> Result<Option<String>, ApiReply> {
        let ids: Vec<String> = url::form_urlencoded::parse(self.query.as_bytes())
            .filter(|(k, _)| k == "stream_id")
            .map(|(_, v)| v.into_owned())
            .collect();
        match ids.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(bad("stream_id more than once")),
        }
    }
}

fn body_id(m: &serde_json::Map<String, Value>) -> Result<String, ApiReply> {
    m.get("stream_id").and_then(Value::as_str).map(String::from).ok_or_else(|| bad("stream_id is required"))
}

impl Transmitter {
    /// One authenticated call of `receiver`.
    pub(crate) async fn handle(&self, receiver: &SsfReceiver, endpoint: Endpoint, call: Call<'_>) -> ApiReply {
        let r = match (endpoint, call.method) {
            (Endpoint::Streams, "GET") => self.read(receiver, &call).await,
            (Endpoint::Streams, "POST") => self.create(receiver, &call).await,
            (Endpoint::Streams, "PATCH") => self.change(receiver, &call, false).await,
            (Endpoint::Streams, "PUT") => self.change(receiver, &call, true).await,
            (Endpoint::Streams, "DELETE") => self.delete(receiver, &call).await,
            (Endpoint::Streams, _) => Err(not_allowed("GET, POST, PATCH, PUT, DELETE")),
            (Endpoint::Status, "GET") => self.status(receiver, &call).await,
            (Endpoint::Status, "POST") => self.set_status(receiver, &call).await,
            (Endpoint::Status, _) => Err(not_allowed("GET, POST")),
            (Endpoint::AddSubject, "POST") => self.subject(receiver, &call, true).await,
            (Endpoint::RemoveSubject, "POST") => self.subject(receiver, &call, false).await,
            (Endpoint::Verify, "POST") => self.verify(receiver, &call).await,
            (Endpoint::Poll(id), "POST") => match self.own(receiver, &id).await {
                Ok(s) if !s.is_push() => Ok(self.poll(&s, call.body).await),
                Ok(_) => Err(bad("this stream is delivered by push")),
                Err(e) => Err(e),
            },
            _ => Err(not_allowed("POST")),
        };
        r.unwrap_or_else(|e| e)
    }

    /// The receiver's stream `id`, or 404 (unknown, or another receiver's).
    async fn own(&self, receiver: &SsfReceiver, id: &str) -> Result<Stream, ApiReply> {
        let all = self.store.ssf_streams().await.map_err(|e| unavailable(&e))?;
        all.get(id)
            .and_then(|r| serde_json::from_str::<Stream>(r).ok())
            .filter(|s| s.receiver == receiver.name)
            .ok_or_else(not_found)
    }

    async fn mine(&self, receiver: &SsfReceiver) -> Result<Vec<Stream>, ApiReply> {
        let all = self.store.ssf_streams().await.map_err(|e| unavailable(&e))?;
        Ok(all
            .values()
            .filter_map(|r| serde_json::from_str::<Stream>(r).ok())
            .filter(|s| s.receiver == receiver.name)
            .collect())
    }

    fn view(&self, s: &Stream) -> Value {
        s.view(&self.issuer, &self.base_url)
    }

    async fn read(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        match call.query_id()? {
            Some(id) => Ok(ApiReply::json(200, self.view(&self.own(receiver, &id).await?))),
            None => {
                let list: Vec<Value> = self.mine(receiver).await?.iter().map(|s| self.view(s)).collect();
                Ok(ApiReply::json(200, Value::Array(list)))
            }
        }
    }

    async fn create(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        let body = call.object()?;
        if body.contains_key("stream_id") {
            return Err(bad("stream_id is the transmitter's"));
        }
        if self.mine(receiver).await?.len() >= receiver.max_streams {
            return Err(ApiReply::error(409, "conflict", "this receiver has as many streams as it may have"));
        }
        let id = crate::crypto::token_hash(crate::crypto::random_token().as_bytes())[..32].to_string();
        let mut s = fresh(id, &receiver.name);
        Change { body: &body, full: true }.apply(&mut s, &self.issuer, true).map_err(bad)?;
        let record = serde_json::to_string(&s).unwrap_or_default();
        match self.store.ssf_put_stream(&s.id, &record, true).await {
            Ok(true) => {
                tracing::info!(receiver = %receiver.name, stream = %s.id, method = %s.delivery.method, "SSF stream created");
                Ok(ApiReply::json(201, self.view(&s)))
            }
            Ok(false) => Err(unavailable(&StoreError::BadReply("ssf_create"))),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// PATCH (`full` false) or PUT (`full` true).
    async fn change(&self, receiver: &SsfReceiver, call: &Call<'_>, full: bool) -> Result<ApiReply, ApiReply> {
        let body = call.object()?;
        let mut s = self.own(receiver, &body_id(&body)?).await?;
        let was_push = s.is_push();
        Change { body: &body, full }.apply(&mut s, &self.issuer, false).map_err(bad)?;
        self.store_update(&s).await?;
        if !was_push && s.is_push() && s.status == "enabled" {
            self.release(&s).await.map_err(|e| unavailable(&e))?;
        }
        Ok(ApiReply::json(200, self.view(&s)))
    }

    async fn store_update(&self, s: &Stream) -> Result<(), ApiReply> {
        let record = serde_json::to_string(s).unwrap_or_default();
        match self.store.ssf_put_stream(&s.id, &record, false).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_found()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn delete(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        let id = call.query_id()?.ok_or_else(|| bad("stream_id is required"))?;
        self.own(receiver, &id).await?;
        match self.store.ssf_delete_stream(&id).await {
            Ok(true) => {
                tracing::info!(receiver = %receiver.name, stream = %id, "SSF stream deleted");
                Ok(ApiReply::empty(204))
            }
            Ok(false) => Err(not_found()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn status(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        let id = call.query_id()?.ok_or_else(|| bad("stream_id is required"))?;
        let s = self.own(receiver, &id).await?;
        Ok(ApiReply::json(200, status_view(&s)))
    }

    async fn set_status(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        let body = call.object()?;
        let mut s = self.own(receiver, &body_id(&body)?).await?;
        let status = body.get("status").and_then(Value::as_str).unwrap_or("");
        if !["enabled", "paused", "disabled"].contains(&status) {
            return Err(bad("status is enabled, paused or disabled"));
        }
        s.reason = match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r.len() <= 256 && !r.chars().any(char::is_control) => Some(r.clone()),
            Some(_) => return Err(bad("reason is a string of at most 256 characters")),
        };
        s.status = status.to_string();
        self.store_update(&s).await?;
        tracing::info!(receiver = %receiver.name, stream = %s.id, status = %s.status, "SSF stream status changed");
        // Enabled again: a push stream's held events go out; disabled: nothing is kept.
        match s.status.as_str() {
            "enabled" if s.is_push() => self.release(&s).await.map_err(|e| unavailable(&e))?,
            "disabled" => self.discard(&s).await.map_err(|e| unavailable(&e))?,
            _ => {}
        }
        Ok(ApiReply::json(200, status_view(&s)))
    }

    async fn subject(&self, receiver: &SsfReceiver, call: &Call<'_>, add: bool) -> Result<ApiReply, ApiReply> {
        let body = call.object()?;
        let s = self.own(receiver, &body_id(&body)?).await?;
        let subject = body.get("subject").ok_or_else(|| bad("subject is required"))?;
        if body.get("verified").is_some_and(|v| !v.is_boolean()) {
            return Err(bad("verified is a boolean"));
        }
        let key = super::set::subject_key(subject, &self.issuer).map_err(bad)?;
        self.store.ssf_subject(&s.id, &key, add).await.map_err(|e| unavailable(&e))?;
        Ok(ApiReply::empty(if add { 200 } else { 204 }))
    }

    async fn verify(&self, receiver: &SsfReceiver, call: &Call<'_>) -> Result<ApiReply, ApiReply> {
        let body = call.object()?;
        let s = self.own(receiver, &body_id(&body)?).await?;
        let state = match body.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(st)) if st.len() <= 1024 => Some(st.clone()),
            Some(_) => return Err(bad("state is a string of at most 1024 characters")),
        };
        if s.status == "disabled" {
            return Err(ApiReply::error(409, "conflict", "the stream is disabled"));
        }
        let every = std::time::Duration::from_secs(MIN_VERIFICATION_INTERVAL);
        match self.store.ssf_verify_gate(&s.id, every).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(ApiReply::error(
                    429,
                    "too_many_requests",
                    "at most one verification per min_verification_interval",
                ))
            }
            Err(e) => return Err(unavailable(&e)),
        }
        let event = state.map(|st| json!({ "state": st })).unwrap_or_else(|| json!({}));
        let sub_id = json!({ "format": "opaque", "id": s.id });
        let (jti, token) = self.sign(&s, sub_id, VERIFICATION, event, None).map_err(|e| {
            tracing::warn!(error = %e, "verification SET not signed");
            ApiReply::error(503, "temporarily_unavailable", "the signing key is not loaded yet; try again")
        })?;
        let mut notices = Vec::new();
        self.deliver(&s, jti, token, "", "", &mut notices).await.map_err(|e| match e {
            super::SsfError::Store(e) => unavailable(&e),
            _ => ApiReply::error(503, "temporarily_unavailable", "try again"),
        })?;
        self.store.enqueue_notices(&notices).await.map_err(|e| unavailable(&e))?;
        Ok(ApiReply::empty(204))
    }
}

fn status_view(s: &Stream) -> Value {
    let mut v = json!({ "stream_id": s.id, "status": s.status });
    if let Some(r) = &s.reason {
        v["reason"] = r.clone().into();
    }
    v
}
