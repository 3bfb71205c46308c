//! The HTTP around the Shared Signals API (`ssf::api`): which endpoint below `ssf.path`, the
//! receiver's bearer token checked before the body is read (401 with `WWW-Authenticate:
//! Bearer`), the body capped at 64 KiB, and the answer written `no-store`.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::{header_str, read_body, respond, Gateway};
use crate::render::Answer;
use crate::ssf::api::{ApiReply, Call, Endpoint};

/// The largest request body: a stream configuration or a poll with its acknowledgements.
const MAX_BODY: usize = 64 * 1024;

fn reply(r: ApiReply) -> Answer {
    Answer::Document { status: r.status, body: r.body, allow: r.allow }
}

impl Gateway {
    pub(super) async fn answer_ssf(&self, session: &mut Session) -> Result<()> {
        let Some(t) = self.published.ssf.clone() else { return Ok(()) };
        let req = session.req_header();
        let canon = crate::uri::canonical(req.uri.path().as_bytes()).to_ascii_lowercase();
        let rest = String::from_utf8_lossy(&canon[t.path().len()..]).trim_end_matches('/').to_string();
        let answer = match (Endpoint::of(&rest), t.receiver(header_str(req, http::header::AUTHORIZATION).as_deref())) {
            (None, _) => Answer::Document {
                status: 404,
                body: Some(r#"{"error":"not_found","error_description":"no such endpoint"}"#.into()),
                allow: None,
            },
            (Some(_), None) => Answer::Json {
                status: 401,
                body: r#"{"error":"invalid_token","error_description":"a receiver's bearer token is required"}"#,
                header: Some(("www-authenticate", r#"Bearer error="invalid_token""#)),
            },
            (Some(endpoint), Some(receiver)) => {
                let method = req.method.as_str().to_string();
                let query = req.uri.query().unwrap_or("").to_string();
                match read_body(session, MAX_BODY).await {
                    Ok(body) => reply(t.handle(receiver, endpoint, Call { method: &method, query: &query, body: &body }).await),
                    Err(e) => Answer::Document {
                        status: e.status(),
                        body: Some(r#"{"error":"invalid_request","error_description":"the body could not be read or is over 64 KiB"}"#.into()),
                        allow: None,
                    },
                }
            }
        };
        // A body left unread (refused before reading) must not be taken for the next request.
        if answer.status() >= 400 {
            session.set_keepalive(None);
        }
        respond::write(session, answer).await
    }
}
