//! Carries out planned steps through the API, one volume at a time; the
//! single-volume module and the fleet module both run their steps here.
//!
//! A retried request whose first attempt took effect (its answer was lost)
//! can meet a refusal that only says the work is already done: an attach to
//! a volume already on that server, a detach of a detached volume, a delete
//! of a deleted one. Those are checked against a fresh read and accepted.

use std::time::Duration;

use serde_json::Value;

use crate::hcloud::types::{Action, Volume};
use crate::hcloud::{ApiCode, Client, Error};

use super::failure::{self, code_of, Code, Refusal};
use super::params::Expect;
use super::plan::{self, PlannedStep, Step, VolumeView};

/// A step that failed, after the ones listed in `done`.
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub code: Code,
    pub msg: String,
    pub error: Option<Error>,
    pub done: Vec<String>,
}

impl Failure {
    /// A failed request (or action) of `step`.
    pub fn api(step: &str, error: Error, done: &[String]) -> Box<Self> {
        Box::new(Failure {
            step: step.to_string(),
            code: code_of(&error),
            msg: format!("kbv3_volume: {step} failed: {error}"),
            error: Some(error),
            done: done.to_vec(),
        })
    }

    /// A refusal decided at `step`.
    pub fn refused(step: &str, refusal: Refusal, done: &[String]) -> Box<Self> {
        Box::new(Failure {
            step: step.to_string(),
            code: refusal.code,
            msg: refusal.msg,
            error: None,
            done: done.to_vec(),
        })
    }

    /// The `failure` object of the result.
    pub fn details(&self) -> Value {
        let mut d = failure::details(self.code, self.error.as_ref());
        d["step"] = self.step.clone().into();
        if d["message"].is_null() {
            d["message"] = self.msg.clone().into();
        }
        d
    }
}

/// The result of applying steps.
#[derive(Debug, Default)]
pub struct Applied {
    /// The volume's id (a created volume's new id).
    pub id: Option<i64>,
    /// The actions of the last step, still to wait for (the caller decides
    /// how: one by one, or batched with other volumes').
    pub pending: Vec<Action>,
    /// The steps carried out, in order.
    pub done: Vec<String>,
    pub warnings: Vec<String>,
}

/// Runs the steps in order on volume `id` (`None` before a create). The
/// actions of each step finish before the next step starts; those of the
/// last step are returned in [`Applied::pending`]. Everything a step needs is
/// in the step.
pub fn apply(
    client: &Client,
    id: Option<i64>,
    steps: &[PlannedStep],
) -> Result<Applied, Box<Failure>> {
    let mut applied = Applied {
        id,
        ..Applied::default()
    };
    for (i, planned) in steps.iter().enumerate() {
        let failed = |e: Error, done: &[String]| Failure::api(&planned.text, e, done);
        let actions = run_step(client, &mut applied, planned)?;
        if i + 1 < steps.len() {
            // The client's deadline (wait_timeout) bounds the wait.
            client
                .wait_for(&actions, Duration::MAX)
                .map_err(|e| failed(e, &applied.done))?;
        } else {
            applied.pending = actions;
        }
        applied.done.push(planned.text.clone());
    }
    Ok(applied)
}

/// Sends one step's request; returns the actions it started.
fn run_step(
    client: &Client,
    applied: &mut Applied,
    planned: &PlannedStep,
) -> Result<Vec<Action>, Box<Failure>> {
    let vid = applied.id.unwrap_or_default();
    let done = applied.done.clone();
    let failed = |e: Error| Failure::api(&planned.text, e, &done);
    match &planned.step {
        Step::Create { request } => {
            let created = client.create_volume(request).map_err(failed)?;
            applied.id = Some(created.volume.id);
            if created.adopted {
                applied.warnings.push(format!(
                    "the answer to creating {} was lost; the retry found the volume it had created ({}) and adopted it",
                    request.name, created.volume.id
                ));
            }
            Ok(created.actions)
        }
        Step::Update { name, labels } => client
            .update_volume(vid, name.as_deref(), labels.as_ref())
            .map(|_| Vec::new())
            .map_err(failed),
        Step::Resize { size } => client
            .resize_volume(vid, *size)
            .map(|a| vec![a])
            .map_err(failed),
        Step::Protect { delete } => client
            .change_volume_protection(vid, *delete)
            .map(|a| vec![a])
            .map_err(failed),
        Step::Detach { .. } => match client.detach_volume(vid) {
            Ok(a) => Ok(vec![a]),
            Err(e) if e.is(&ApiCode::InvalidInput) && attached(client, vid)?.is_none() => {
                Ok(Vec::new())
            }
            Err(e) => Err(failed(e)),
        },
        Step::Attach { to, automount } => {
            match client.attach_volume(vid, to.id, Some(*automount)) {
                Ok(a) => Ok(vec![a]),
                Err(e)
                    if e.is(&ApiCode::VolumeAlreadyAttached)
                        && attached(client, vid)? == Some(to.id) =>
                {
                    Ok(Vec::new())
                }
                Err(e) => Err(failed(e)),
            }
        }
        Step::Delete { recheck } => {
            // Time has passed since the plan was checked (a detach, an
            // unprotect): check it again, right before the delete.
            if let Some(expect) = recheck {
                let fresh = client
                    .get_volume(vid)
                    .map_err(|e| Failure::api("re-read the volume before deleting it", e, &done))?;
                still_as_reviewed(expect, fresh.as_ref())
                    .map_err(|r| Failure::refused(&planned.text, r, &done))?;
            }
            match client.delete_volume(vid) {
                Err(e) if !e.is_not_found() => Err(failed(e)),
                _ => Ok(Vec::new()),
            }
        }
    }
}

/// The server a volume is attached to now (fresh read).
fn attached(client: &Client, id: i64) -> Result<Option<i64>, Box<Failure>> {
    client
        .get_volume(id)
        .map(|v| v.and_then(|v| v.server))
        .map_err(|e| Failure::api("re-read the volume", e, &[]))
}

/// Checks a fresh read of a volume about to be deleted: it must still be the
/// reviewed one, now attached to no server (the detach is done). A volume
/// that is gone is fine. Otherwise: `stale_plan`.
pub fn still_as_reviewed(expect: &Expect, fresh: Option<&Volume>) -> Result<(), Refusal> {
    let Some(v) = fresh else {
        return Ok(());
    };
    let mut view = VolumeView::of(v, None);
    let mut found = Vec::new();
    if let Some(server) = view.server.take() {
        found.push(format!(
            "attached again (to server {server}) after the detach"
        ));
    }
    found.extend(plan::differences(expect, &view));
    if found.is_empty() {
        return Ok(());
    }
    Err(plan::stale(&view, &found))
}
