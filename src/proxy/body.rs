//! Reading a request body the gateway must see (end_session forms, credential forms): capped,
//! within a total deadline, whatever the framing.

use pingora::proxy::Session;

/// How long reading an end_session form body may take in total.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyError {
    /// Larger than the cap (413).
    TooLarge,
    /// Broken framing, or the client too slow (400).
    Unreadable,
}

impl BodyError {
    pub(super) fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Unreadable => 400,
        }
    }
}

/// Read a request body of at most `cap` bytes within [`BODY_DEADLINE`].
pub(super) async fn read_body(session: &mut Session, cap: usize) -> std::result::Result<Vec<u8>, BodyError> {
    if session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > cap)
    {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut buf = Vec::new();
        while let Some(chunk) = session.read_request_body().await.map_err(|_| BodyError::Unreadable)? {
            if buf.len() + chunk.len() > cap {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    tokio::time::timeout(BODY_DEADLINE, read).await.unwrap_or(Err(BodyError::Unreadable))
}
