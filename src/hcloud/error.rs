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

/// What kind of transport failure, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No answer within the request timeout: retried.
    Timeout,
    /// Reset or closed after the request went out: retried.
    Connection,
    /// No connection could be made (refused, unreachable): the request
    /// never left. Retried.
    Connect,
    /// TLS, a request that cannot be built, a redirect loop: never retried.
    Permanent,
}

/// Everything that can go wrong talking to the API.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The request did not complete: connection refused, reset, timed out,
    /// or a problem that no retry can change (TLS, an unusable request).
    #[error("{request}: {reason}")]
    Transport {
        request: String,
        reason: String,
        kind: TransportKind,
    },
    /// The API answered with a redirect; the token is never sent after one.
    #[error("{request}: the API answered HTTP {status}, a redirect{}; kbv3 does not follow redirects with the token: set api_endpoint to the final URL", location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default())]
    Redirect {
        request: String,
        status: u16,
        location: Option<String>,
    },
    /// An answer larger than the client accepts.
    #[error("{request}: the answer is larger than {} MiB; refusing to read it", limit / (1024 * 1024))]
    TooLarge { request: String, limit: u64 },
    /// A list whose pages never end.
    #[error("{request}: stopped after {pages} pages; the API keeps announcing another page")]
    Pagination { request: String, pages: u32 },
    /// Polled actions that the API did not return.
    #[error(
        "actions not found: {} (the API did not return them when polled)",
        format_ids(ids)
    )]
    ActionsNotFound { ids: Vec<i64> },
    /// The run's one deadline ran out.
    #[error("the deadline of {}s (wait_timeout) ran out while {waiting_for}{}", budget.as_secs(), last.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    Deadline {
        waiting_for: String,
        budget: Duration,
        last: Option<Box<Error>>,
    },
    /// The project's request budget is spent and refills after the deadline.
    #[error("{request}: the project's request budget is spent (rate_limit_exceeded): the next request is allowed in {}s{}, after this run's deadline; rerun later or raise wait_timeout", next_in.as_secs(), full_at.as_deref().map(|t| format!(" and the budget is full again at {t}")).unwrap_or_default())]
    RateLimited {
        request: String,
        next_in: Duration,
        full_at: Option<String>,
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
    /// A transient error kept coming back until the retry budget was spent,
    /// or a retry met a final answer. `unsure`: an earlier attempt's answer
    /// was lost (a timeout, a broken connection, a gateway error), so it may
    /// have taken effect.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        attempts: u32,
        last: Box<Error>,
        unsure: bool,
    },
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
                kind: TransportKind::Timeout,
                ..
            } => "request_timeout".into(),
            Error::Transport {
                kind: TransportKind::Permanent,
                ..
            } => "transport_refused".into(),
            Error::Transport { .. } => "transport_error".into(),
            Error::Redirect { .. } => "redirect".into(),
            Error::TooLarge { .. } => "response_too_large".into(),
            Error::Pagination { .. } => "pagination_runaway".into(),
            Error::ActionsNotFound { .. } => "actions_not_found".into(),
            Error::Deadline { .. } => "deadline_exceeded".into(),
            Error::RateLimited { .. } => ApiCode::RateLimitExceeded.to_string(),
            Error::ActionFailed { code, .. } => code.clone(),
            Error::ActionTimeout { .. } => "action_timeout".into(),
            Error::RetriesExhausted { last, .. } => last.code(),
            Error::Config(_) => "configuration".into(),
        }
    }

    /// How many attempts were made (1 unless retries were spent).
    pub fn attempts(&self) -> u32 {
        match self {
            Error::RetriesExhausted { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// True when the API answered with this code (possibly after retries).
    pub fn is(&self, code: &ApiCode) -> bool {
        self.api().is_some_and(|e| e.code == *code)
    }

    /// True when an earlier attempt of this request went out and its answer
    /// was lost: it may have done the work a retry then finds done.
    pub fn earlier_attempt_unsure(&self) -> bool {
        matches!(self, Error::RetriesExhausted { unsure: true, .. })
    }

    /// True when no answer says whether the request took effect: it timed
    /// out, its connection broke, or a gateway answered for the API.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Transport { kind, .. } => {
                matches!(kind, TransportKind::Timeout | TransportKind::Connection)
            }
            Error::Api(e) => matches!(e.status, 500 | 502 | 504),
            Error::UnexpectedResponse { status, .. } => matches!(status, 500 | 502 | 504),
            _ => false,
        }
    }

    /// True for an API `not_found` answer.
    pub fn is_not_found(&self) -> bool {
        self.is(&ApiCode::NotFound)
    }

    /// True when the same request may succeed later (a transient error, a
    /// spent deadline or retry budget); false when the API refused it for
    /// good (protected, forbidden, invalid, …), which no rerun changes.
    pub fn rerun_may_fix(&self) -> bool {
        match self {
            Error::Api(e) => matches!(
                e.code,
                ApiCode::Conflict
                    | ApiCode::Locked
                    | ApiCode::RateLimitExceeded
                    | ApiCode::Unavailable
                    | ApiCode::Timeout
                    | ApiCode::BadGateway
                    | ApiCode::ServiceError
            ),
            Error::UnexpectedResponse { status, .. } => *status >= 500,
            Error::Transport { kind, .. } => *kind != TransportKind::Permanent,
            Error::RetriesExhausted { last, .. } => last.rerun_may_fix(),
            Error::Deadline { .. }
            | Error::RateLimited { .. }
            | Error::ActionTimeout { .. }
            | Error::ActionFailed { .. } => true,
            Error::Redirect { .. }
            | Error::TooLarge { .. }
            | Error::Pagination { .. }
            | Error::ActionsNotFound { .. }
            | Error::Config(_) => false,
        }
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
                    unsure: false,
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
            unsure: false,
        };
        assert_eq!(e.code(), "unavailable");
        assert!(!e.is_not_found());
    }
}
