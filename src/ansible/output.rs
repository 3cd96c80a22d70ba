//! What a module prints: the failed result's one shape (`failed`,
//! `changed`, `msg`, `failure` with its code, `warnings`) and
//! `invocation.module_args`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::reconcile::failure::{Code, Details, Next, Refusal};

use super::args::Settings;

/// A failed run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    failed: bool,
    /// True when steps before the failure changed something.
    pub changed: bool,
    pub msg: String,
    pub failure: Details,
    /// What to do next.
    pub next: Next,
    pub warnings: Vec<String>,
}

impl Failed {
    /// A failure after `changed` steps, with the message for people.
    pub fn new(msg: String, failure: Details, changed: bool) -> Self {
        Failed {
            failed: true,
            changed,
            msg,
            next: Next::after(&[failure.code], false),
            failure,
            warnings: Vec::new(),
        }
    }

    /// A refusal before any change.
    pub fn refused(r: &Refusal) -> Self {
        Failed::new(r.msg.clone(), Details::refused(r), false)
    }

    /// Invalid args: a refusal with `invalid_argument`.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Failed::refused(&Refusal::new(Code::InvalidArgument, msg))
    }

    /// The result object, with the run's warnings and its invocation.
    pub fn into_result(
        mut self,
        warnings: &[String],
        module_args: &Map<String, Value>,
        settings: Settings,
    ) -> Value {
        self.warnings = warnings.to_vec();
        let mut result = serde_json::to_value(self).unwrap_or_default();
        add_invocation(&mut result, module_args, settings);
        result
    }
}

/// Adds `invocation.module_args`, unless the run is `no_log`.
pub fn add_invocation(result: &mut Value, module_args: &Map<String, Value>, settings: Settings) {
    if !settings.no_log {
        result["invocation"] = json!({ "module_args": module_args });
    }
}
