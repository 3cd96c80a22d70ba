//! Carries out a plan through the API, waiting for each action when asked.
//!
//! A retried request whose first attempt took effect (its answer was lost)
//! can meet a refusal that only says the work is already done: an attach to
//! a volume already on that server, a detach of a detached volume, a delete
//! of a deleted one. Those are checked against a fresh read and accepted.

use std::time::Duration;

use serde_json::Value;

use crate::hcloud::types::{Action, CreateVolumeRequest};
use crate::hcloud::{ApiCode, Client, Error};

use super::failure::{self, code_of, Code, Refusal};
use super::params::{Expect, Params};
use super::plan::{self, Plan, Step, VolumeView};

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
    fn api(step: &str, error: Error, done: &[String]) -> Box<Self> {
        Box::new(Failure {
            step: step.to_string(),
            code: code_of(&error),
            msg: format!("kbv3_volume: {step} failed: {error}"),
            error: Some(error),
            done: done.to_vec(),
        })
    }

    fn refused(step: &str, refusal: Refusal, done: &[String]) -> Box<Self> {
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

/// The result of applying a plan.
#[derive(Debug)]
pub struct Applied {
    pub volume: Option<VolumeView>,
    pub warnings: Vec<String>,
}

/// Runs every step in order; returns the volume as it ends up.
pub fn apply(client: &Client, p: &Params, plan: &Plan) -> Result<Applied, Box<Failure>> {
    let mut id = plan.before.as_ref().and_then(|v| v.id);
    let mut warnings = Vec::new();
    let mut done = Vec::new();
    for planned in &plan.steps {
        let vid = id.unwrap_or_default();
        let wait = |actions: &[Action]| -> Result<(), Error> {
            if p.wait {
                // The client's deadline (wait_timeout) bounds the wait.
                client.wait_for(actions, Duration::MAX)?;
            }
            Ok(())
        };
        let outcome = match &planned.step {
            Step::Create { location, server } => {
                let req = CreateVolumeRequest {
                    name: p.name.clone().unwrap_or_default(),
                    size: p.size.unwrap_or_default() as u32,
                    server: server.as_ref().map(|s| s.id),
                    location: server.is_none().then(|| location.clone()),
                    labels: p.labels.clone(),
                    automount: server.as_ref().map(|_| p.automount),
                    format: p.format.map(|f| f.as_str().to_string()),
                };
                client.create_volume(&req).and_then(|created| {
                    id = Some(created.volume.id);
                    if created.adopted {
                        warnings.push(format!(
                            "the answer to creating {} was lost; the retry found the volume it had created ({}) and adopted it",
                            req.name, created.volume.id
                        ));
                    }
                    wait(&created.actions)
                })
            }
            Step::Update { name, labels } => client
                .update_volume(vid, name.as_deref(), labels.as_ref())
                .map(|_| ()),
            Step::Resize { size } => client.resize_volume(vid, *size).and_then(|a| wait(&[a])),
            Step::Protect { delete } => client
                .change_volume_protection(vid, *delete)
                .and_then(|a| wait(&[a])),
            Step::Detach { .. } => match client.detach_volume(vid).and_then(|a| wait(&[a])) {
                Err(e) if e.is(&ApiCode::InvalidInput) && attached(client, vid)?.is_none() => {
                    Ok(())
                }
                other => other,
            },
            Step::Attach { to } => match client
                .attach_volume(vid, to.id, Some(p.automount))
                .and_then(|a| wait(&[a]))
            {
                Err(e)
                    if e.is(&ApiCode::VolumeAlreadyAttached)
                        && attached(client, vid)? == Some(to.id) =>
                {
                    Ok(())
                }
                other => other,
            },
            Step::Delete => {
                // Time has passed since the plan was checked (a detach, an
                // unprotect): check it again, right before the delete.
                let recheck = p.expect.as_ref().filter(|_| !done.is_empty());
                if let Some(expect) = recheck {
                    still_as_reviewed(client, expect, vid, &planned.text, &done)?;
                }
                match client.delete_volume(vid) {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                }
            }
        };
        outcome.map_err(|e| Failure::api(&planned.text, e, &done))?;
        done.push(planned.text.clone());
    }
    let volume = match (id, &plan.after) {
        (Some(id), Some(after)) if p.wait => {
            let fresh = client
                .get_volume(id)
                .map_err(|e| Failure::api("read the result", e, &done))?;
            fresh.map(|v| VolumeView::of(&v, after.server_name.clone()))
        }
        (Some(id), Some(after)) => Some(VolumeView {
            id: Some(id),
            ..after.clone()
        }),
        _ => None,
    };
    Ok(Applied { volume, warnings })
}

/// The server a volume is attached to now (fresh read).
fn attached(client: &Client, id: i64) -> Result<Option<i64>, Box<Failure>> {
    client
        .get_volume(id)
        .map(|v| v.and_then(|v| v.server))
        .map_err(|e| Failure::api("re-read the volume", e, &[]))
}

/// Reads the volume again and fails with `stale_plan` unless it is still the
/// reviewed one, now attached to no server.
fn still_as_reviewed(
    client: &Client,
    expect: &Expect,
    id: i64,
    step: &str,
    done: &[String],
) -> Result<(), Box<Failure>> {
    let fresh = client
        .get_volume(id)
        .map_err(|e| Failure::api("re-read the volume before deleting it", e, done))?;
    let Some(v) = fresh else {
        return Ok(());
    };
    let mut view = VolumeView::of(&v, None);
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
    Err(Failure::refused(step, plan::stale(&view, &found), done))
}
