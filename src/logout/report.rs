//! Front-channel reports: the logout page tells, once the iframes loaded or the time ran out,
//! which RP's iframe did what, so the session's receipt says it (`receipt.rs`) and
//! `logout_gateway_frontchannel_results_total{result}` counts it.
//!
//! The page's nonce'd script POSTs (`navigator.sendBeacon`, same origin) `t=<ticket>&r=<one
//! letter per iframe: l loaded, t timed out>` to `<first end_session path>/frontchannel-report`.
//! The ticket is random, made for that logout and kept in the store only until shortly after
//! its page's timeout, and taken once, so a report is bound to its logout and counted once; the
//! first result per RP stays. The input is unauthenticated: capped, parsed strictly, never
//! reflected (every well-formed report gets the same empty 204, known ticket or not).

use std::time::Duration;

use super::Logout;
use crate::metrics::Metrics;
use crate::render::Answer;

/// Below each end_session path: where the page reports.
pub(crate) const REPORT_SUFFIX: &str = "/frontchannel-report";
/// The most iframes a report speaks for (a page has one per participating RP).
const MAX_FRAMES: usize = 64;
/// How long after its page's timeout a ticket may still report.
const REPORT_GRACE: Duration = Duration::from_secs(60);

/// The report body: the ticket and the letters, each given once.
fn parse(body: &[u8]) -> Option<(String, String)> {
    let (mut t, mut r) = (None, None);
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "t" => &mut t,
            "r" => &mut r,
            _ => return None,
        };
        if slot.replace(v.into_owned()).is_some() {
            return None;
        }
    }
    let (t, r) = (t?, r?);
    let ticket_ok =
        (16..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let letters_ok = (1..=MAX_FRAMES).contains(&r.len()) && r.bytes().all(|b| b == b'l' || b == b't');
    (ticket_ok && letters_ok).then_some((t, r))
}

impl Logout {
    /// A ticket for the page of a logout whose iframes are `reporters` (client_id, primary sid),
    /// or None (no session to report into, or the store did not keep it: the page then does
    /// not report; the logout itself stands).
    pub(super) async fn report_ticket(&self, reporters: &[(String, String)]) -> Option<String> {
        if reporters.iter().all(|(_, session)| session.is_empty()) {
            return None;
        }
        let token = crate::crypto::random_token();
        let value = serde_json::to_string(reporters).ok()?;
        let ttl = self.frontchannel_timeout + REPORT_GRACE;
        match self.store.put_ticket(&token, &value, ttl).await {
            Ok(()) => Some(token),
            Err(e) => {
                tracing::debug!(error = %e, "front-channel report ticket not kept; the page will not report");
                None
            }
        }
    }

    /// A report (the body of the POST): 204 whether or not the ticket was known, 400 for a
    /// malformed one.
    pub(crate) async fn frontchannel_report(&self, body: &[u8]) -> Answer {
        let Some((ticket, letters)) = parse(body) else {
            return Answer::json(400, r#"{"error":"invalid_request"}"#);
        };
        let taken = match self.store.take_ticket(&ticket).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "front-channel report not recorded");
                return Answer::NoContent;
            }
        };
        let reporters: Vec<(String, String)> = taken.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
        if reporters.len() != letters.len() {
            return Answer::NoContent;
        }
        for ((client, session), letter) in reporters.iter().zip(letters.bytes()) {
            if session.is_empty() {
                continue;
            }
            let result = if letter == b'l' { "loaded" } else { "timeout" };
            let note = [(format!("fc:{client}"), result.to_string())];
            match self.store.note_receipt(session, &note, true, None).await {
                Ok(w) if w.first() == Some(&true) => {
                    Metrics::get().frontchannel_results.with_label_values(&[result]).inc();
                    tracing::info!(target: "logout_gateway::receipt", sid = %session, client = %client, frontchannel = result, "receipt");
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "front-channel report not recorded"),
            }
        }
        Answer::NoContent
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reports_are_parsed_strictly() {
        let t = "AAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(parse(format!("t={t}&r=ltl").as_bytes()), Some((t.into(), "ltl".into())));
        for bad in [
            format!("t={t}"),
            "r=l".to_string(),
            format!("t={t}&r=l&r=t"),
            format!("t={t}&t={t}&r=l"),
            format!("t={t}&r=x"),
            format!("t={t}&r="),
            format!("t={t}&r={}", "l".repeat(65)),
            "t=short&r=l".to_string(),
            format!("t={t}%3C&r=l"),
            format!("t={t}&r=l&x=1"),
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
    }
}
