//! Why a logout request did not end in a logout, and the one place that turns that into a
//! status, a page, a metric label and a log line (`Logout::fail`). The steps of end_session and
//! of its confirmation return `Result<Reply, Failure>` and use `?`; nothing else picks a status.

use super::notify::NotifyError;
use super::params::ParamError;
use crate::render::ErrorKind;
use crate::session::StoreError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogoutError {
    /// The parameters break the rules (duplicates, caps, encoding).
    #[error("bad parameters: {0}")]
    Params(#[from] ParamError),
    /// The decision table refused the request (the reason is for logs only).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The confirmation is unknown, used, expired, or not bound to this browser.
    #[error("confirmation invalid: {0}")]
    ConfirmationInvalid(&'static str),
    /// A method the endpoint does not take; the value is the `Allow` header.
    #[error("method not allowed")]
    Method(&'static str),
    /// A query too long to read (414).
    #[error("request too large")]
    TooLarge,
    /// A POST that is not a form (415).
    #[error("not a form")]
    NotForm,
    /// The session store did not answer.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The sessions ended, but their RPs could not be told.
    #[error("{0}")]
    Notify(#[from] NotifyError),
    /// The hint's keys could not be fetched.
    #[error("upstream keys: {0}")]
    Keys(String),
    /// The global cap on confirmation contexts is reached.
    #[error("the cap on confirmation contexts is reached")]
    ConfirmationsCapped,
    /// A page could not be rendered.
    #[error("page: {0}")]
    Render(String),
}

impl LogoutError {
    /// Status, page and `logouts_total{outcome}` label.
    pub(crate) fn answer(&self) -> (u16, ErrorKind, &'static str) {
        match self {
            LogoutError::Params(_) | LogoutError::Refused(_) => (400, ErrorKind::Rejected, "rejected"),
            LogoutError::ConfirmationInvalid(_) => (400, ErrorKind::ConfirmationInvalid, "rejected"),
            LogoutError::Method(_) => (405, ErrorKind::MethodNotAllowed, "rejected"),
            LogoutError::TooLarge => (414, ErrorKind::TooLarge, "rejected"),
            LogoutError::NotForm => (415, ErrorKind::UnsupportedMediaType, "rejected"),
            LogoutError::Store(_)
            | LogoutError::Notify(_)
            | LogoutError::Keys(_)
            | LogoutError::ConfirmationsCapped => (503, ErrorKind::Unavailable, "unavailable"),
            // The outcome labels of docs/contract.md have no "error": a failed render counts as rejected.
            LogoutError::Render(_) => (500, ErrorKind::Internal, "rejected"),
        }
    }
}

/// A [`LogoutError`] with the language of the page that reports it (None: the default).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: LogoutError,
    pub(crate) lang: Option<String>,
}

impl<E: Into<LogoutError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure { error: e.into(), lang: None }
    }
}

/// `?` with the page's language: `store_call.await.in_lang(&lang)?`.
pub(crate) trait InLang<T> {
    fn in_lang(self, lang: &str) -> Result<T, Failure>;
}

impl<T, E: Into<LogoutError>> InLang<T> for Result<T, E> {
    fn in_lang(self, lang: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure { error: e.into(), lang: Some(lang.to_string()) })
    }
}
