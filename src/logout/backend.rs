//! RP back-end logout by refresh token: a confidential client POSTs `client_id`,
//! `client_secret` (or HTTP Basic) and `refresh_token` to the end_session path, as Keycloak's
//! adapters and several proxies do. The client authenticates with the credentials proxy.yaml
//! gives it (`client_secret`; `revocation_auth: none` marks a public client, which the token
//! alone authenticates, as Keycloak allows); the token must be one the gateway learned for
//! that client. Then the session ends and every RP of it is notified, and the answer is
//! Keycloak's: 204, or an OAuth error (400 `invalid_grant`, 401 `invalid_client`).

use super::params::LogoutParams;
use super::{session_of, Input, Logout, Reply};
use crate::config::RevocationAuth;
use crate::crypto::{secrets_match, token_hash};
use crate::render::Answer;
use crate::session::StoreError;

/// Why a back-end logout was refused (each with its fixed OAuth answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// A refresh token in a URL, or without a client: 400 invalid_request.
    Request,
    /// Unknown client, wrong or missing secret: 401 invalid_client.
    Client,
    /// A token the gateway never learned, or another client's: 400 invalid_grant.
    Grant,
    /// The store did not answer: 503.
    Unavailable,
}

impl Refused {
    fn reply(self) -> Reply {
        let (answer, outcome) = match self {
            Refused::Request => (
                Answer::json(
                    400,
                    r#"{"error":"invalid_request","error_description":"back-end logout is a POST with a client and a refresh_token"}"#,
                ),
                "rejected",
            ),
            Refused::Client => (
                Answer::Json {
                    status: 401,
                    body: r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
                    header: Some(("www-authenticate", r#"Basic realm="logout""#)),
                },
                "rejected",
            ),
            Refused::Grant => (
                Answer::json(
                    400,
                    r#"{"error":"invalid_grant","error_description":"unknown refresh token for this client"}"#,
                ),
                "rejected",
            ),
            Refused::Unavailable => (
                Answer::Json {
                    status: 503,
                    body: r#"{"error":"temporarily_unavailable","error_description":"the logout could not be recorded; try again"}"#,
                    header: Some(("retry-after", "5")),
                },
                "unavailable",
            ),
        };
        Reply { answer, outcome }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        tracing::warn!(error = %e, "back-end logout not completed");
        Refused::Unavailable
    }
}

impl Logout {
    /// A request to end_session carrying `refresh_token` (see the module comment).
    pub(super) async fn backend_logout(&self, p: &LogoutParams, input: &Input<'_>) -> Reply {
        match self.backend_steps(p, input).await {
            Ok(()) => Reply { answer: Answer::NoContent, outcome: "logged_out" },
            Err(r) => {
                tracing::info!(reason = ?r, "back-end logout refused");
                r.reply()
            }
        }
    }

    async fn backend_steps(&self, p: &LogoutParams, input: &Input<'_>) -> Result<(), Refused> {
        let token = p.refresh_token.as_deref().unwrap_or("");
        if input.method != "POST" {
            return Err(Refused::Request); // a refresh token in a URL is already leaked; never act on it
        }
        let client_id = self.authenticated_client(p, input)?;
        let Some((sid, owner)) = self.store.session_by_token(&token_hash(token.as_bytes())).await? else {
            return Err(Refused::Grant);
        };
        if owner != client_id {
            return Err(Refused::Grant);
        }
        let ended = session_of(&self.store.end_session(&sid, None, false).await?);
        let sessions: Vec<_> = ended.into_iter().collect();
        self.notifier.sessions_ended(&sessions, &[], None, crate::ssf::Initiator::User).await.map_err(|e| {
            tracing::warn!(error = %e, "back-end logout: notices not accepted");
            Refused::Unavailable
        })?;
        tracing::info!(client = %client_id, "logged out by the RP's back end (refresh token)");
        Ok(())
    }

    /// The client the request authenticates as: HTTP Basic, else `client_id` with
    /// `client_secret` in the form, checked against proxy.yaml's credentials for it.
    fn authenticated_client(&self, p: &LogoutParams, input: &Input<'_>) -> Result<String, Refused> {
        let basic = input.authorization.and_then(basic_credentials);
        let (id, secret) = match (&basic, &p.client_id) {
            (Some((id, _)), Some(form_id)) if id != form_id => return Err(Refused::Client),
            (Some((id, secret)), _) => (id.clone(), Some(secret.clone())),
            (None, Some(id)) => (id.clone(), p.client_secret.clone()),
            (None, None) => return Err(Refused::Request),
        };
        let client = self.clients.configured_client(&id).ok_or(Refused::Client)?;
        let ok = match (&client.revocation, secret.as_deref()) {
            (Some(RevocationAuth::Basic(s) | RevocationAuth::Post(s)), Some(given)) => {
                secrets_match(given.as_bytes(), s.expose().as_bytes())
            }
            (Some(RevocationAuth::Public), None) => true,
            _ => false,
        };
        if ok {
            Ok(id)
        } else {
            Err(Refused::Client)
        }
    }
}

/// `Authorization: Basic` credentials: client_id and secret, each form-urlencoded (RFC 6749
/// §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| String::from_utf8(crate::uri::decode(s.replace('+', " ").as_bytes())).ok();
    Some((decode(id)?, decode(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        use base64::Engine;
        let enc = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(basic_credentials(&enc("rp%3Aa:s%2Bx+y")), Some(("rp:a".into(), "s+x y".into())));
        assert_eq!(basic_credentials(&enc("rp:")), Some(("rp".into(), String::new())));
        assert_eq!(basic_credentials(&enc("no-colon")), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }
}
