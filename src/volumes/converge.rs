//! Converges every entry of a fleet run against one [`Index`]:
//!
//! 1. plan each entry with the shared planner (pure, from the lists);
//! 2. run the deletions' steps up to their delete (the detaches), then the
//!    desired volumes' steps, `concurrency` volumes at a time ([`apply`],
//!    shared with `kbv3_volume`);
//! 3. after each of those two stages, wait for all its last actions at once
//!    (batched polls);
//! 4. read the volumes again (one paged list): each deletion must still be
//!    what was reviewed, now detached; this list is also the final read;
//! 5. delete the deletions that passed, `concurrency` at a time.
//!
//! A failing entry fails alone; the others go on.

use std::collections::HashMap;
use std::time::Duration;

use crate::hcloud::types::Action;
use crate::hcloud::{Client, Error, VolumeFilter};
use crate::module::apply::{self, Failure};
use crate::module::failure::Code;
use crate::module::observe;
use crate::module::plan::{self, Plan, PlannedStep, Step, VolumeView};

use super::index::Index;
use super::params::{Entry, Kind};
use super::pool;

/// What became of one entry.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The plan, unless the entry was refused before planning.
    pub plan: Option<Plan>,
    /// The steps carried out (check mode: none).
    pub done: Vec<String>,
    pub failure: Option<Box<Failure>>,
    /// The volume as it ends up (check mode: as predicted); for a deletion,
    /// the volume as it was.
    pub volume: Option<VolumeView>,
    pub warnings: Vec<String>,
    id: Option<i64>,
    pending: Vec<Action>,
    /// A deletion whose steps before the delete are done.
    delete: Option<PlannedStep>,
}

impl Outcome {
    fn fail(&mut self, f: Box<Failure>) {
        self.done = f.done.clone();
        self.failure = Some(f);
        self.delete = None;
        self.pending.clear();
    }
}

/// Plans every entry from the index; with `check_mode` nothing else happens.
pub fn converge(
    client: &Client,
    index: &mut Index,
    entries: &[Entry],
    check_mode: bool,
    workers: usize,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = entries.iter().map(|e| planned(index, e)).collect();
    if check_mode {
        return outcomes;
    }
    // 2. The deletions up to their delete (detach, unprotect), then the
    // desired volumes: a server is locked while a volume is detached from
    // it, so its new volume is attached once the old one is off.
    let mut work: Vec<Work> = outcomes
        .iter_mut()
        .enumerate()
        .filter_map(|(i, o)| {
            let plan = o.plan.as_ref().filter(|_| o.failure.is_none())?;
            let mut steps = plan.steps.clone();
            if matches!(steps.last().map(|s| &s.step), Some(Step::Delete { .. })) {
                let last = steps.pop().expect("a last step");
                // The list read below replaces the per-volume re-read.
                o.delete = Some(PlannedStep {
                    step: Step::Delete { recheck: None },
                    text: last.text,
                });
            }
            Some((i, o.id, steps)).filter(|(_, _, s)| !s.is_empty())
        })
        .collect();
    let desired: Vec<Work> = work
        .iter()
        .filter(|(i, _, _)| entries[*i].kind == Kind::Volume)
        .cloned()
        .collect();
    work.retain(|(i, _, _)| entries[*i].kind == Kind::Deletion);
    // 3. Each stage's last actions are awaited together.
    for stage in [work, desired] {
        run_stage(client, &mut outcomes, &stage, workers);
        wait_all(client, &mut outcomes);
    }
    // 4. One fresh list: the deletions' re-check and everyone's final read.
    let changed = outcomes
        .iter()
        .any(|o| !o.done.is_empty() || o.delete.is_some());
    if changed {
        match client.list_volumes(&VolumeFilter::default()) {
            Ok(volumes) => index.replace_volumes(volumes),
            Err(e) => {
                for o in outcomes.iter_mut().filter(|o| o.delete.is_some()) {
                    let done = o.done.clone();
                    o.fail(Failure::api(
                        "re-read the volumes before deleting them",
                        e.clone(),
                        &done,
                    ));
                }
            }
        }
        recheck(index, entries, &mut outcomes);
    }
    // 5. The deletions that are still as reviewed.
    let deletes: Vec<Work> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| Some((i, o.id, vec![o.delete.clone()?])))
        .collect();
    run_stage(client, &mut outcomes, &deletes, workers);
    if changed {
        final_views(index, entries, &mut outcomes);
    }
    outcomes
}

/// An entry's index, its volume's id and the steps to run.
type Work = (usize, Option<i64>, Vec<PlannedStep>);

/// Runs the steps of every work item, `workers` volumes at a time; a
/// failure fails its entry only.
fn run_stage(client: &Client, outcomes: &mut [Outcome], work: &[Work], workers: usize) {
    let applied = pool::run(work, workers, |(_, id, steps)| {
        apply::apply(client, *id, steps)
    });
    for ((i, _, _), result) in work.iter().zip(applied) {
        let o = &mut outcomes[*i];
        match result {
            Ok(a) => {
                o.id = a.id;
                o.done.extend(a.done);
                o.pending = a.pending;
                o.warnings.extend(a.warnings);
            }
            Err(mut f) => {
                f.done = [o.done.clone(), f.done].concat();
                o.fail(f);
            }
        }
    }
}

/// Observes (from the index) and plans one entry. A refused entry keeps
/// the volume as observed, so that its result still names it.
fn planned(index: &Index, e: &Entry) -> Outcome {
    let mut o = Outcome::default();
    let observed = match observe::observe(index, &e.params) {
        Ok(obs) => obs,
        Err(r) => {
            o.failure = Some(Failure::refused("observe", r, &[]));
            return o;
        }
    };
    match plan::plan(&e.params, &observed) {
        Ok(p) => {
            o.id = p.before.as_ref().and_then(|v| v.id);
            o.volume = match e.kind {
                Kind::Volume => p.after.clone(),
                Kind::Deletion => p.before.clone(),
            };
            o.warnings = p.warnings.clone();
            o.plan = Some(p);
        }
        Err(r) => {
            o.volume = observed
                .volume
                .as_ref()
                .map(|v| VolumeView::of(v, observed.attached_to.as_ref().map(|s| s.name.clone())));
            o.failure = Some(Failure::refused("plan", r, &[]));
        }
    }
    o
}

/// Waits for the last actions of every entry with batched polls; an action
/// that failed or is still running fails its entry only.
fn wait_all(client: &Client, outcomes: &mut [Outcome]) {
    let owner: HashMap<i64, usize> = outcomes
        .iter()
        .enumerate()
        .flat_map(|(i, o)| o.pending.iter().map(move |a| (a.id, i)))
        .collect();
    let actions: Vec<Action> = outcomes
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.pending))
        .collect();
    if actions.is_empty() {
        return;
    }
    let last_step = |o: &Outcome| o.done.last().cloned().unwrap_or_default();
    let earlier = |o: &Outcome| o.done[..o.done.len().saturating_sub(1)].to_vec();
    match client.wait_all(&actions, Duration::MAX) {
        Ok(waited) => {
            for a in waited.finished.iter().filter(|a| a.status == "error") {
                let o = &mut outcomes[owner[&a.id]];
                let f = Failure::api(&last_step(o), client.action_error(a), &earlier(o));
                o.fail(f);
            }
            for id in &waited.running {
                let o = &mut outcomes[owner[id]];
                let e = Error::ActionTimeout {
                    running: vec![*id],
                    waited: waited.waited,
                };
                let f = Failure::api(&last_step(o), e, &earlier(o));
                o.fail(f);
            }
        }
        Err(e) => {
            let mut hit: Vec<usize> = owner.values().copied().collect();
            hit.sort_unstable();
            hit.dedup();
            for i in hit {
                let o = &mut outcomes[i];
                let f = Failure::api(&last_step(o), e.clone(), &earlier(o));
                o.fail(f);
            }
        }
    }
}

/// Fails every deletion whose volume is no longer what was reviewed.
fn recheck(index: &Index, entries: &[Entry], outcomes: &mut [Outcome]) {
    for (e, o) in entries.iter().zip(outcomes.iter_mut()) {
        let (Some(step), Some(expect)) = (&o.delete, &e.params.expect) else {
            continue;
        };
        let fresh = o.id.and_then(|id| index.get(id));
        if let Err(r) = apply::still_as_reviewed(expect, fresh) {
            let text = step.text.clone();
            let done = o.done.clone();
            o.fail(Failure::refused(&text, r, &done));
        }
    }
}

/// The volumes as the last list shows them.
fn final_views(index: &Index, entries: &[Entry], outcomes: &mut [Outcome]) {
    for (e, o) in entries.iter().zip(outcomes.iter_mut()) {
        if e.kind != Kind::Volume || o.done.is_empty() {
            continue;
        }
        if let Some(v) = o.id.and_then(|id| index.get(id)) {
            o.volume = Some(VolumeView::of(v, v.server.map(|s| index.server_name(s))));
        }
    }
}

/// True when the entry's failure is a volume left alone because it changed
/// since the review.
pub fn is_stale(o: &Outcome) -> bool {
    o.failure
        .as_ref()
        .is_some_and(|f| f.code == Code::StalePlan)
}
