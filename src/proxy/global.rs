//! The global token revocation endpoint on the public listener: the HTTP around
//! `logout::global` (method, bearer token before the body, the body capped, the count).

use pingora::prelude::*;
use pingora::proxy::Session;

use super::{header_str, read_body, respond, Gateway};
use crate::logout::global::GlobalReply;
use crate::metrics::Metrics;
use crate::render::Answer;

/// The largest body accepted: a subject identifier is a few hundred bytes.
const MAX_BODY: usize = 8 * 1024;

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
}
