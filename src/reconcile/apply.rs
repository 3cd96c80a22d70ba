//! Carries out planned steps through the API, one volume at a time; the
//! single-volume module and the fleet module both run their steps here.
//!
//! Every mutating request is journaled when the run keeps a journal: its
//! intent before it is sent, its outcome after ([`crate::reconcile::journal`]).
//! Every detach is checked against what its action touched: a detach from
//! any server but the one the plan read is a change made during the run,
//! which is undone (the volume goes back to that server) and refused as
//! `stale_plan`. A deletion that cannot go on after its detach puts the
//! volume back where it was ([`super::guard`]).
//!
//! A retried request whose first attempt took effect (its answer was lost)
//! can meet a refusal that only says the work is already done: an attach to
//! a volume already on that server, a detach of a detached volume, a delete
//! of a deleted one. Those are checked against a fresh read and accepted.

use std::time::Duration;

use crate::hcloud::types::{Action, ActionStatus};
use crate::hcloud::{ApiCode, Client, Error};
use crate::reconcile::journal::{Event, Fate, Intent, Journal, Op};

use super::failure::{code_of, Code, Details, Refusal};
use super::guard::{attached, last_detach, moved_during_the_run, still_as_reviewed, undo_detach};
use super::plan::{PlannedStep, ServerRef, Step};

/// What every step of a run shares: the client, the journal (when the run
/// keeps one), whose volume this is, and how servers are named.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub journal: Option<&'a Journal>,
    /// The inventory host the volume belongs to.
    pub host: &'a str,
    /// The volume's name (or id) as the plan knows it.
    pub volume: &'a str,
    /// A server's name from its id.
    pub server_name: &'a (dyn Fn(i64) -> String + Sync),
}

/// A step that failed, after the ones listed in `done`.
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub code: Code,
    pub msg: String,
    pub error: Option<Error>,
    pub done: Vec<String>,
    /// True when running again finishes the job (a transient error); false
    /// when a rerun would meet the same refusal.
    pub rerun_finishes: bool,
}

impl Failure {
    /// A failed request (or action) of `step`.
    pub fn api(step: &str, error: Error, done: &[String]) -> Box<Self> {
        Box::new(Failure {
            step: step.to_string(),
            code: code_of(&error),
            msg: format!("{step} failed: {error}"),
            rerun_finishes: error.rerun_may_fix(),
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
            rerun_finishes: false,
        })
    }

    /// The `failure` object of the result.
    pub fn details(&self) -> Details {
        Details::of(self.code, &self.step, self.error.as_ref(), &self.msg)
    }
}

/// An action still running, and the journal entry it finishes.
#[derive(Debug, Clone)]
pub struct Pending {
    pub action: Action,
    pub seq: Option<u64>,
}

/// The result of applying steps.
#[derive(Debug, Default)]
pub struct Applied {
    /// The volume's id (a created volume's new id).
    pub id: Option<i64>,
    /// The actions of the last step, still to wait for (the caller decides
    /// how: one by one, or batched with other volumes').
    pub pending: Vec<Pending>,
    /// The steps carried out, in order.
    pub done: Vec<String>,
    pub warnings: Vec<String>,
    /// The server this run detached the volume from, as its action said.
    pub detached_from: Option<ServerRef>,
}

impl Ctx<'_> {
    /// Journals an intent (nothing without a journal). A journal that
    /// cannot be written stops the step before its request.
    pub(super) fn intent(
        &self,
        op: Op,
        id: Option<i64>,
        size_gb: Option<u32>,
        server: Option<&ServerRef>,
        undo: bool,
    ) -> Result<Option<u64>, Error> {
        let Some(j) = self.journal else {
            return Ok(None);
        };
        j.intent(Intent {
            op,
            host: self.host.to_string(),
            volume: self.volume.to_string(),
            volume_id: id,
            size_gb,
            server_id: server.map(|s| s.id),
            server: server.map(|s| s.name.clone()),
            undo,
        })
        .map(Some)
        .map_err(Error::Config)
    }

    /// Journals what became of an intent. A line that cannot be written
    /// never turns a request that went through into a failure: its intent
    /// stays open in the journal, and the next run over that host reads the
    /// API to learn the outcome, as after a kill. (An intent that cannot be
    /// written stops its request.)
    pub fn outcome(
        &self,
        seq: Option<u64>,
        result: Fate,
        action: Option<&Action>,
        volume_id: Option<i64>,
        detail: Option<String>,
    ) {
        let (Some(j), Some(seq)) = (self.journal, seq) else {
            return;
        };
        let _ = j.write(Event::Outcome {
            seq,
            result,
            action_id: action.map(|a| a.id),
            volume_id,
            server_id: action.and_then(touched_server),
            detail,
        });
    }

    /// A server by id, with its name.
    pub(super) fn server(&self, id: i64) -> ServerRef {
        ServerRef {
            id,
            name: (self.server_name)(id),
        }
    }
}

/// The server an action touched, from its resources.
pub fn touched_server(a: &Action) -> Option<i64> {
    a.resources
        .iter()
        .find(|r| r.kind == "server")
        .map(|r| r.id)
}

/// Journals the end of finished actions: done, or failed with the API's error.
pub fn journal_finished(ctx: &Ctx, pending: &[Pending], finished: &[Action]) {
    for p in pending {
        if let Some(a) = finished.iter().find(|a| a.id == p.action.id) {
            let (fate, detail) = if a.status == ActionStatus::Error {
                let why = a.error.as_ref().map_or("the action failed", |e| &e.message);
                (Fate::Failed, Some(why.to_string()))
            } else {
                (Fate::Done, None)
            };
            ctx.outcome(p.seq, fate, Some(&p.action), None, detail);
        }
    }
}

/// Waits for actions, journals their end, and fails on the first that failed.
pub(super) fn settle(ctx: &Ctx, pending: &[Pending]) -> Result<(), Error> {
    let actions: Vec<Action> = pending.iter().map(|p| p.action.clone()).collect();
    let waited = ctx.client.wait_all(&actions, Duration::MAX)?;
    journal_finished(ctx, pending, &waited.finished);
    if let Some(failed) = waited
        .finished
        .iter()
        .find(|a| a.status == ActionStatus::Error)
    {
        return Err(ctx.client.action_error(failed));
    }
    if !waited.running.is_empty() {
        return Err(Error::ActionTimeout {
            running: waited.running,
            waited: waited.waited,
        });
    }
    Ok(())
}

/// Runs the steps in order on volume `id` (`None` before a create). The
/// actions of each step finish before the next step starts; those of the
/// last step are returned in [`Applied::pending`]. Everything a step needs is
/// in the step.
///
/// # Errors
/// The step that failed, what it failed with, and the steps done before it.
pub fn apply(ctx: &Ctx, id: Option<i64>, steps: &[PlannedStep]) -> Result<Applied, Box<Failure>> {
    let mut applied = Applied {
        id,
        ..Applied::default()
    };
    for (i, planned) in steps.iter().enumerate() {
        let pending = match run_step(ctx, &mut applied, planned) {
            Ok(p) => p,
            Err(f) => return Err(undo_refused_delete(ctx, &applied, planned, f)),
        };
        if i + 1 < steps.len() {
            // The client's deadline (wait_timeout) bounds the wait.
            settle(ctx, &pending).map_err(|e| Failure::api(&planned.text, e, &applied.done))?;
        } else {
            applied.pending = pending;
        }
        applied.done.push(planned.text.clone());
    }
    Ok(applied)
}

/// A deletion refused after this run's detach puts the volume back (a
/// failure a rerun would fix leaves it detached: the rerun finishes it).
fn undo_refused_delete(
    ctx: &Ctx,
    applied: &Applied,
    planned: &PlannedStep,
    f: Box<Failure>,
) -> Box<Failure> {
    match (&planned.step, &applied.detached_from, applied.id) {
        (Step::Delete { .. }, Some(from), Some(id)) if !f.rerun_finishes => {
            undo_detach(ctx, id, from, f)
        }
        _ => f,
    }
}

/// What a request started: its actions, and a created volume's id.
struct Started {
    actions: Vec<Action>,
    created: Option<i64>,
}

impl From<Action> for Started {
    fn from(a: Action) -> Self {
        Started {
            actions: vec![a],
            created: None,
        }
    }
}

/// Journals the intent, sends the request, journals its outcome; the
/// request answers `None` when it only met "already done".
fn journaled(
    ctx: &Ctx,
    op: Op,
    id: Option<i64>,
    size: Option<u32>,
    server: Option<&ServerRef>,
    request: impl FnOnce() -> Result<Option<Started>, Error>,
) -> Result<Vec<Pending>, Error> {
    let seq = ctx.intent(op, id, size, server, false)?;
    match request() {
        Ok(Some(started)) => {
            let first = started.actions.first();
            let fate = if first.is_some() {
                Fate::Accepted
            } else {
                Fate::Done
            };
            ctx.outcome(seq, fate, first, started.created, None);
            Ok(started
                .actions
                .into_iter()
                .enumerate()
                .map(|(i, action)| Pending {
                    action,
                    seq: seq.filter(|_| i == 0),
                })
                .collect())
        }
        Ok(None) => {
            ctx.outcome(seq, Fate::AlreadyDone, None, None, None);
            Ok(Vec::new())
        }
        Err(e) => {
            ctx.outcome(seq, Fate::Failed, None, None, Some(e.to_string()));
            Err(e)
        }
    }
}

/// Sends one step's request; returns the actions it started.
fn run_step(
    ctx: &Ctx,
    applied: &mut Applied,
    planned: &PlannedStep,
) -> Result<Vec<Pending>, Box<Failure>> {
    let client = ctx.client;
    let vid = applied.id.unwrap_or_default();
    let done = applied.done.clone();
    let failed = |e: Error| Failure::api(&planned.text, e, &done);
    type Request<'r> = Box<dyn FnOnce() -> Result<Option<Started>, Error> + 'r>;
    let on_volume = |op: Op, size: Option<u32>, server: Option<&ServerRef>, request: Request| {
        journaled(ctx, op, Some(vid), size, server, request).map_err(failed)
    };
    match &planned.step {
        Step::Create { request } => {
            let mut created = None;
            let pending = journaled(ctx, Op::Create, None, Some(request.size), None, || {
                let c = client.create_volume(request)?;
                let started = Started {
                    actions: c.actions.clone(),
                    created: Some(c.volume.id),
                };
                created = Some(c);
                Ok(Some(started))
            })
            .map_err(failed)?;
            if let Some(c) = created {
                applied.id = Some(c.volume.id);
                if c.adopted {
                    applied.warnings.push(format!(
                        "the answer to creating {} was lost; the retry found the volume it had created ({}) and adopted it",
                        request.name, c.volume.id
                    ));
                }
            }
            Ok(pending)
        }
        Step::Update { name, labels } => on_volume(
            Op::Update,
            None,
            None,
            Box::new(|| {
                client
                    .update_volume(vid, name.as_deref(), labels.as_ref())
                    .map(|_| {
                        Some(Started {
                            actions: Vec::new(),
                            created: None,
                        })
                    })
            }),
        ),
        Step::Resize { size } => on_volume(
            Op::Resize,
            Some(*size),
            None,
            Box::new(|| client.resize_volume(vid, *size).map(|a| Some(a.into()))),
        ),
        Step::Protect { delete } => on_volume(
            Op::Protect,
            None,
            None,
            Box::new(|| {
                client
                    .change_volume_protection(vid, *delete)
                    .map(|a| Some(a.into()))
            }),
        ),
        Step::Detach { from } => {
            let lost = std::cell::Cell::new(false);
            let pending = on_volume(
                Op::Detach,
                None,
                Some(from),
                Box::new(|| match client.detach_volume(vid) {
                    Ok(a) => Ok(Some(a.into())),
                    Err(e) if e.is(&ApiCode::InvalidInput) && attached(client, vid)?.is_none() => {
                        lost.set(e.earlier_attempt_unsure());
                        Ok(own_lost_attempt(&e))
                    }
                    Err(e) => Err(e),
                }),
            )?;
            // Which server this run's detach took the volume off: its action
            // says; after a lost answer, the volume's last detach says. A
            // volume found detached by someone else is not this run's.
            let touched = match pending.first() {
                Some(p) => touched_server(&p.action).or(Some(from.id)),
                None if lost.get() => last_detach(client, vid).map_err(failed)?,
                None => None,
            };
            match touched {
                Some(other) if other != from.id && !pending.is_empty() => {
                    Err(moved_during_the_run(ctx, vid, from, other, &pending, &done))
                }
                Some(s) if s == from.id => {
                    applied.detached_from = Some(from.clone());
                    Ok(pending)
                }
                _ => Ok(pending),
            }
        }
        Step::Attach { to, automount } => on_volume(
            Op::Attach,
            None,
            Some(to),
            Box::new(
                || match client.attach_volume(vid, to.id, Some(*automount)) {
                    Ok(a) => Ok(Some(a.into())),
                    Err(e)
                        if e.is(&ApiCode::VolumeAlreadyAttached)
                            && attached(client, vid)? == Some(to.id) =>
                    {
                        Ok(own_lost_attempt(&e))
                    }
                    Err(e) => Err(e),
                },
            ),
        ),
        Step::Delete { recheck } => {
            // Time has passed since the plan was checked (a detach, an
            // unprotect): check it again, right before the delete.
            if let Some(expect) = recheck {
                let fresh = client
                    .get_volume(vid)
                    .map_err(|e| Failure::api("re-read the volume before deleting it", e, &done))?;
                let detached_here = applied.detached_from.is_some();
                still_as_reviewed(expect, fresh.as_ref(), detached_here)
                    .map_err(|r| Failure::refused(&planned.text, r, &done))?;
            }
            delete(ctx, vid).map(|_| Vec::new()).map_err(failed)
        }
    }
}

/// A refusal that says the work is done, met by a retry: when an earlier
/// attempt of this request went out (its answer lost), that attempt did the
/// work (`Some`: done, no action to wait for); on the first attempt it was
/// done before (`None`: already done).
fn own_lost_attempt(e: &Error) -> Option<Started> {
    e.earlier_attempt_unsure().then(|| Started {
        actions: Vec::new(),
        created: None,
    })
}

/// What a DELETE did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// This request deleted the volume.
    Now,
    /// An earlier attempt of this request did: its answer was lost and the
    /// retry found the volume gone.
    AnswerLost,
    /// The first attempt met a 404: the volume was gone before; never
    /// counted as deleted by this run.
    AlreadyGone,
}

/// Deletes volume `id`, journaled.
///
/// # Errors
/// The DELETE failed and a fresh read does not show the volume gone.
pub fn delete(ctx: &Ctx, id: i64) -> Result<Deleted, Error> {
    let seq = ctx.intent(Op::Delete, Some(id), None, None, false)?;
    let (fate, detail, deleted) = match ctx.client.delete_volume(id) {
        Ok(()) => (Fate::Done, None, Deleted::Now),
        Err(e) if e.is_not_found() && e.earlier_attempt_unsure() => (
            Fate::Done,
            Some("the answer was lost; the retry found the volume gone"),
            Deleted::AnswerLost,
        ),
        Err(e) if e.is_not_found() => (
            Fate::AlreadyDone,
            Some("already gone (404)"),
            Deleted::AlreadyGone,
        ),
        Err(e) => {
            ctx.outcome(seq, Fate::Failed, None, None, Some(e.to_string()));
            return Err(e);
        }
    };
    ctx.outcome(seq, fate, None, None, detail.map(String::from));
    Ok(deleted)
}
