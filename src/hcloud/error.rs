//! Typed errors of the client. None of them ever holds the API token: errors
//! are built from responses and request lines, never from headers.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::code::ApiCode;

/// An error answer of the API: its HTTP status, the error envelope and the
/// `X-Correlation-Id` header. Displays as `message (code, correlation-id)`,
/// the form the official clients use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: u16,
    pub code: ApiCode,
    pub message: String,
    pub details: Option<Value>,
    pub correlation_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.correlation_id {
            Some(id) => write!(f, "{} ({}, {})", self.message, self.code, id),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}

/// Everything that can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error envelope.
    #[error("{0}")]
    Api(ApiError),
    /// The API answered with something that is not its JSON (a proxy's HTML
    /// page, an empty 500): the status and the start of the body.
    #[error(
        "{request}: unexpected HTTP {status} answer that is not Hetzner API JSON: {excerpt:?}"
    )]
    UnexpectedResponse {
        request: String,
        status: u16,
        excerpt: String,
    },
    /// The request did not complete: connection refused, reset, or timed out.
    #[error("{request}: {reason}")]
    Transport {
        request: String,
        reason: String,
        timed_out: bool,
    },
    /// An action finished with status `error`.
    #[error("action {command} ({action_id}) failed: {message} ({code})")]
    ActionFailed {
        action_id: i64,
        command: String,
        code: String,
        message: String,
    },
    /// Actions were still running when the wait budget ran out.
    #[error("gave up waiting after {}s for actions still running: {}", waited.as_secs(), format_ids(running))]
    ActionTimeout { running: Vec<i64>, waited: Duration },
    /// A transient error kept coming back until the retry budget was spent.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
    /// The configuration cannot work (a missing token, a malformed endpoint).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The API error behind this error, if the API answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            Error::RetriesExhausted { last, .. } => last.api(),
            _ => None,
        }
    }

    /// The API error code (`not_found`, `locked`, …), or a code of our own
    /// for errors that did not come with one.
    pub fn code(&self) -> String {
        match self {
            Error::Api(e) => e.code.to_string(),
            Error::UnexpectedResponse { status, .. } => format!("http_{status}"),
            Error::Transport {
                timed_out: true, ..
            } => "request_timeout".into(),
            Error::Transport { .. } => "transport_error".into(),
            Error::ActionFailed { code, .. } => code.clone(),
            Error::ActionTimeout { .. } => "action_timeout".into(),
            Error::RetriesExhausted { last, .. } => last.code(),
            Error::Config(_) => "configuration".into(),
        }
    }

    /// True when the API answered with this code (possibly after retries).
    pub fn is(&self, code: &ApiCode) -> bool {
        self.api().is_some_and(|e| e.code == *code)
    }

    /// True for an API `not_found` answer.
    pub fn is_not_found(&self) -> bool {
        self.is(&ApiCode::NotFound)
    }
}

fn format_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, message: &str) -> ApiError {
        ApiError {
            status: 423,
            code: ApiCode::parse(code),
            message: message.into(),
            details: None,
            correlation_id: Some("0123abcd4567ef89".into()),
        }
    }

    #[test]
    fn displays_like_the_official_clients() {
        let cases = [
            (
                Error::Api(api("protected", "volume deletion is protected")),
                "volume deletion is protected (protected, 0123abcd4567ef89)",
            ),
            (
                Error::RetriesExhausted {
                    attempts: 6,
                    last: Box::new(Error::Api(api("locked", "volume is locked"))),
                },
                "volume is locked (locked, 0123abcd4567ef89) (gave up after 6 attempts)",
            ),
            (
                Error::ActionFailed {
                    action_id: 7,
                    command: "attach_volume".into(),
                    code: "action_failed".into(),
                    message: "Action failed".into(),
                },
                "action attach_volume (7) failed: Action failed (action_failed)",
            ),
            (
                Error::ActionTimeout {
                    running: vec![3, 4],
                    waited: Duration::from_secs(600),
                },
                "gave up waiting after 600s for actions still running: 3, 4",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn code_looks_through_retries() {
        let e = Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(Error::Api(api("unavailable", "x"))),
        };
        assert_eq!(e.code(), "unavailable");
        assert!(!e.is_not_found());
    }
}
