//! What a failed proxy attempt answers (502, 504, or nothing when the client is gone) and how it
//! is counted.

use pingora::prelude::*;

/// The status for a failed proxy attempt: 504 for timeouts, 502 for other upstream failures.
pub(crate) fn error_status(e: &Error) -> u16 {
    match e.etype() {
        HTTPStatus(c) => *c,
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                // The client is gone: nobody to answer.
                WriteError | ReadError | ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The `upstream_errors_total{reason}` label of a failed attempt.
pub(super) fn error_reason(e: &Error) -> &'static str {
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => "timeout",
        ConnectRefused | ConnectNoRoute | ConnectError => "connect",
        TLSHandshakeFailure | InvalidCert | HandshakeError => "tls",
        _ => "other",
    }
}
