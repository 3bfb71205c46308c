//! Global token revocation (draft-parecki-oauth-global-token-revocation): a trusted caller (a
//! security tool, a support console, an HR system) POSTs a subject identifier with one of the
//! configured bearer tokens, and every session of that subject ends as a logout would, whatever
//! OP is behind the gateway (`subject.rs`). Discovery advertises it as
//! `global_token_revocation_endpoint`.
//!
//! Answers: 204 (ended, or already ended), 400 `invalid_request` (a body that is not one JSON
//! object naming a subject in a format the gateway resolves), 401 `invalid_token` (no or another
//! bearer token), 404 (no session of that subject is remembered), 503 (the store did not
//! confirm). The body is read only after the token was accepted.

use serde::Deserialize;

use super::subject::{end_subject, SubjectEnded};
use super::Logout;
use crate::config::GlobalRevocation;
use crate::render::Answer;

/// The request body: `{"sub_id": {...}}` (other members are ignored; `sub_id` twice is refused).
#[derive(Deserialize)]
struct Request {
    sub_id: SubId,
}

/// The subject identifier formats (RFC 9493) the draft names.
#[derive(Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
enum SubId {
    /// The OP's issuer and the subject's `sub`.
    IssSub { iss: String, sub: String },
    /// An identifier only the OP understands: taken as the OP's `sub`.
    Opaque { id: String },
    /// An e-mail address: the gateway keeps none, so it cannot resolve it.
    Email {
        #[allow(dead_code)]
        email: String,
    },
}

/// One answer and its `logout_gateway_global_revocations_total{result}` label.
pub(crate) struct GlobalReply {
    pub(crate) answer: Answer,
    pub(crate) result: &'static str,
}

/// Why a body was refused (400 `invalid_request`); each has a fixed description, so nothing
/// of the request is reflected.
#[derive(Debug, Clone, Copy)]
enum Invalid {
    ContentType,
    Body,
    Issuer,
    Email,
    Subject,
}

impl Invalid {
    fn reply(self) -> GlobalReply {
        let body = match self {
            Invalid::ContentType => {
                r#"{"error":"invalid_request","error_description":"the body must be application/json"}"#
            }
            Invalid::Body => {
                r#"{"error":"invalid_request","error_description":"the body must be one JSON object with sub_id"}"#
            }
            Invalid::Issuer => {
                r#"{"error":"invalid_request","error_description":"sub_id.iss is not this provider's issuer"}"#
            }
            Invalid::Email => {
                r#"{"error":"invalid_request","error_description":"the email format cannot be resolved here; use iss_sub or opaque"}"#
            }
            Invalid::Subject => {
                r#"{"error":"invalid_request","error_description":"the subject identifier is empty, too long or not printable"}"#
            }
        };
        GlobalReply { answer: Answer::json(400, body), result: "invalid" }
    }
}

/// A `sub` the store can be asked about: 1 to 256 printable ASCII characters.
fn plain_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl Logout {
    /// The endpoint's canonical path, when it is configured.
    pub(crate) fn global_path(&self) -> Option<&str> {
        self.global.as_ref().map(|g| g.path.as_str())
    }

    /// None when `authorization` carries one of the configured tokens (`Bearer`, any letter
    /// case); else the 401 to send.
    pub(crate) fn global_refusal(&self, authorization: Option<&str>) -> Option<GlobalReply> {
        let g: &GlobalRevocation = self.global.as_ref()?;
        let presented = authorization.and_then(|a| {
            let (scheme, token) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let ok = presented.is_some_and(|p| {
            // Every token is compared, so the time taken does not say which one nearly matched.
            g.tokens
                .iter()
                .fold(false, |hit, t| crate::crypto::secrets_match(p.as_bytes(), t.expose().as_bytes()) | hit)
        });
        (!ok).then_some(GlobalReply {
            answer: Answer::Json {
                status: 401,
                body: r#"{"error":"invalid_token","error_description":"a valid bearer token is required"}"#,
                header: Some(("www-authenticate", r#"Bearer error="invalid_token""#)),
            },
            result: "unauthorized",
        })
    }

    /// An authorized request's body: end every session of the subject it names.
    pub(crate) async fn global_revocation(&self, content_type: Option<&str>, body: &[u8]) -> GlobalReply {
        let json = content_type
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Invalid::ContentType.reply();
        }
        let sub = match serde_json::from_slice::<Request>(body) {
            Err(_) => return Invalid::Body.reply(),
            Ok(Request { sub_id: SubId::Email { .. } }) => return Invalid::Email.reply(),
            Ok(Request { sub_id: SubId::IssSub { iss, .. } }) if iss != self.issuer => return Invalid::Issuer.reply(),
            Ok(Request { sub_id: SubId::IssSub { sub, .. } }) => sub,
            Ok(Request { sub_id: SubId::Opaque { id } }) => id,
        };
        if !plain_subject(&sub) {
            return Invalid::Subject.reply();
        }
        match end_subject(self.store.as_ref(), &self.notifier, &sub).await {
            Ok(SubjectEnded::Unknown) => GlobalReply {
                answer: Answer::json(
                    404,
                    r#"{"error":"not_found","error_description":"no session of this subject is known"}"#,
                ),
                result: "unknown",
            },
            Ok(SubjectEnded::Ended(n)) => {
                tracing::info!(sessions = n, "global token revocation: every session of the subject ended");
                GlobalReply { answer: Answer::NoContent, result: "ended" }
            }
            Err(e) => {
                tracing::warn!(error = %e, "global token revocation not completed");
                GlobalReply {
                    answer: Answer::Json {
                        status: 503,
                        body: r#"{"error":"temporarily_unavailable","error_description":"the revocation could not be recorded; try again"}"#,
                        header: Some(("retry-after", "5")),
                    },
                    result: "unavailable",
                }
            }
        }
    }
}
