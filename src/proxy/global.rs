//! Two small endpoints of the public listener beside end_session: global token revocation (the
//! HTTP around `logout::global`: method, bearer token before the body, the body capped, the
//! count) and the front-channel page's report (around `logout::report`).

use pingora::prelude::*;
use pingora::proxy::Session;

use super::{header_str, read_body, respond, Gateway};
use crate::logout::global::GlobalReply;
use crate::metrics::Metrics;
use crate::render::Answer;

/// The largest body accepted: a subject identifier is a few hundred bytes.
const MAX_BODY: usize = 8 * 1024;
/// The largest report: a ticket and one letter per iframe.
const MAX_REPORT: usize = 1024;

impl Gateway {
    pub(super) async fn answer_global(&self, session: &mut Session) -> Result<()> {
        let req = session.req_header();
        let reply = if req.method != http::Method::POST {
            GlobalReply {
                answer: Answer::Json {
                    status: 405,
                    body: r#"{"error":"invalid_request","error_description":"global token revocation is a POST"}"#,
                    header: Some(("allow", "POST")),
                },
                result: "invalid",
            }
        } else if let Some(refused) =
            self.logout.global_refusal(header_str(req, http::header::AUTHORIZATION).as_deref())
        {
            refused
        } else {
            let content_type = header_str(req, http::header::CONTENT_TYPE);
            match read_body(session, MAX_BODY).await {
                Ok(body) => self.logout.global_revocation(content_type.as_deref(), &body).await,
                Err(e) => GlobalReply {
                    answer: Answer::json(
                        e.status(),
                        r#"{"error":"invalid_request","error_description":"the body could not be read or is over 8 KiB"}"#,
                    ),
                    result: "invalid",
                },
            }
        };
        // A body left unread (refused before reading) must not be taken for the next request.
        if reply.result != "ended" && reply.result != "unknown" {
            session.set_keepalive(None);
        }
        Metrics::get().global_revocations.with_label_values(&[reply.result]).inc();
        respond::write(session, reply.answer).await
    }

    /// A front-channel page's report: POST, a small form body; 204 (or 400 when malformed).
    pub(super) async fn answer_report(&self, session: &mut Session) -> Result<()> {
        let answer = if session.req_header().method != http::Method::POST {
            Answer::Json { status: 405, body: r#"{"error":"invalid_request"}"#, header: Some(("allow", "POST")) }
        } else {
            match read_body(session, MAX_REPORT).await {
                Ok(body) => self.logout.frontchannel_report(&body).await,
                Err(e) => Answer::json(e.status(), r#"{"error":"invalid_request"}"#),
            }
        };
        if answer.status() != 204 {
            session.set_keepalive(None);
        }
        respond::write(session, answer).await
    }
}
