//! Why a module run failed, as a stable code that playbooks classify by
//! (`failure.code`), next to the message for people.

use serde::Serialize;
use serde_json::{json, Value};

use crate::hcloud::Error;

/// The stable failure codes of `kbv3_volume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// An option, a setting or the diff file is not usable.
    InvalidArgument,
    /// A server or volume the task needs does not exist.
    NotFound,
    /// `id` and `name` name different volumes, or a name is ambiguous.
    IdentityMismatch,
    /// The volume changed since the reviewed plan; it was left alone.
    StalePlan,
    /// The volume is delete-protected and the task did not lift it.
    Protected,
    /// A change Hetzner cannot make (shrink, move without `move`, another location).
    Refused,
    /// A deletion from the reviewed diff without its confirmation code.
    Unconfirmed,
    /// A deletion of a volume the reviewed diff does not list.
    NotInDiff,
    /// A request failed (after retries where they make sense).
    ApiError,
    /// An action the API ran ended in error.
    ActionFailed,
    /// `wait_timeout` ran out (a request, a retry or actions still running).
    Timeout,
    /// Another run holds the lock of a host this run would change, or the
    /// state directory cannot hold the journal and locks.
    Locked,
    /// Left as it is because a change it depends on did not happen (the
    /// server still has a legacy volume that had to go first).
    Blocked,
}

/// A refusal or failure decided before any change: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub msg: String,
}

impl Refusal {
    /// A refusal with this code.
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Refusal {
            code,
            msg: msg.into(),
        }
    }

    /// A failed request, with what the module was doing.
    pub fn api(context: &str, e: &Error) -> Self {
        Refusal::new(code_of(e), format!("{context}: {e}"))
    }
}

/// The code of a client error.
pub fn code_of(e: &Error) -> Code {
    match e {
        _ if e.is(&crate::hcloud::ApiCode::Protected) => Code::Protected,
        Error::ActionFailed { .. } => Code::ActionFailed,
        Error::ActionTimeout { .. } | Error::Deadline { .. } => Code::Timeout,
        Error::Config(_) => Code::InvalidArgument,
        _ => Code::ApiError,
    }
}

/// The `failure` object of a result: the code, plus what the API said.
pub fn details(code: Code, e: Option<&Error>) -> Value {
    let api = e.and_then(Error::api);
    json!({
        "code": code,
        "api_code": e.map(Error::code),
        "message": api.map(|a| a.message.clone()).or_else(|| e.map(Error::to_string)),
        "correlation_id": api.and_then(|a| a.correlation_id.clone()),
        "details": api.and_then(|a| a.details.clone()),
        "action_id": match e {
            Some(Error::ActionFailed { action_id, .. }) => Some(*action_id),
            _ => None,
        },
    })
}
