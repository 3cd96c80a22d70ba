//! Why a module run failed, as a stable code that playbooks classify by
//! (`failure.code`), next to the message for people.

use serde::Serialize;
use serde_json::Value;

use crate::hcloud::Error;

/// The stable failure codes of `kbv3_volume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Results write a code as [`Code::as_str`] names it.
impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Code {
    /// The code as results write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::NotFound => "not_found",
            Code::IdentityMismatch => "identity_mismatch",
            Code::StalePlan => "stale_plan",
            Code::Protected => "protected",
            Code::Refused => "refused",
            Code::Unconfirmed => "unconfirmed",
            Code::NotInDiff => "not_in_diff",
            Code::ApiError => "api_error",
            Code::ActionFailed => "action_failed",
            Code::Timeout => "timeout",
            Code::Locked => "locked",
            Code::Blocked => "blocked",
        }
    }
}

/// What a person does next after a run that left something undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Another run holds the hosts: wait for it, then run again.
    Wait,
    /// The volumes changed since the review: make and review a new diff.
    Refresh,
    /// Fix the cause and run again with the same code.
    Rerun,
}

impl Next {
    /// The next step after failures with these codes, `stale` when
    /// volumes were left alone because they changed since the review.
    pub fn after(codes: &[Code], stale: bool) -> Self {
        if codes.contains(&Code::Locked) {
            Next::Wait
        } else if stale || codes.contains(&Code::StalePlan) || codes.contains(&Code::Protected) {
            Next::Refresh
        } else {
            Next::Rerun
        }
    }
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

/// The `failure` object of every failed result, whichever module and
/// whatever failed: the code always, what the API said when it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Details {
    pub code: Code,
    pub message: String,
    /// The step that failed, once steps had started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The API's error code, or kbv3's for an error without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The failed action, when an action failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<i64>,
}

impl Details {
    /// A refusal decided before any change.
    pub fn refused(r: &Refusal) -> Self {
        Details {
            code: r.code,
            message: r.msg.clone(),
            step: None,
            api_code: None,
            correlation_id: None,
            details: None,
            action_id: None,
        }
    }

    /// A failure with this code, at `step`, caused by `e` (when a request
    /// failed); `msg` when the API gave no message.
    pub fn of(code: Code, step: &str, e: Option<&Error>, msg: &str) -> Self {
        let api = e.and_then(Error::api);
        Details {
            code,
            message: api
                .map(|a| a.message.clone())
                .or_else(|| e.map(Error::to_string))
                .unwrap_or_else(|| msg.to_string()),
            step: Some(step.to_string()),
            api_code: e.map(Error::code),
            correlation_id: api.and_then(|a| a.correlation_id.clone()),
            details: api.and_then(|a| a.details.clone()),
            action_id: match e {
                Some(Error::ActionFailed { action_id, .. }) => Some(*action_id),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn the_next_step_follows_the_codes() {
        use super::Next;
        let cases: [(&[Code], bool, Next); 6] = [
            (&[], false, Next::Rerun),
            (&[Code::ApiError], false, Next::Rerun),
            (&[], true, Next::Refresh),
            (&[Code::Protected], false, Next::Refresh),
            (&[Code::StalePlan, Code::ApiError], false, Next::Refresh),
            (&[Code::StalePlan, Code::Locked], true, Next::Wait),
        ];
        for (codes, stale, want) in cases {
            assert_eq!(Next::after(codes, stale), want, "{codes:?} {stale}");
        }
    }
}
