//! Steps 5's wait and 6 of a fleet run: the last actions of every entry
//! awaited with batched polls and journaled, then the volumes as the last
//! list shows them.

use std::collections::HashSet;
use std::time::Duration;

use crate::hcloud::types::{Action, ActionStatus};
use crate::hcloud::Error;
use crate::modules::volumes::index::Index;
use crate::modules::volumes::params::{Entry, Kind};
use crate::reconcile::apply::{journal_finished, Failure};
use crate::reconcile::plan::VolumeView;

use super::{ctx, name, Outcome, Run};

/// Waits for the last actions of every entry with batched polls and
/// journals their end. An entry fails on its first failed action (a
/// create's, not the attach that depended on it), or on one still running.
pub(super) fn wait_all(run: &Run, index: &Index, entries: &[Entry], outcomes: &mut [Outcome]) {
    let actions: Vec<Action> = outcomes
        .iter()
        .flat_map(|o| o.pending.iter().map(|p| p.action.clone()))
        .collect();
    if actions.is_empty() {
        return;
    }
    let waited = run.client.wait_all(&actions, Duration::MAX);
    let server_name = |id: i64| index.server_name(id);
    for (e, o) in entries.iter().zip(outcomes.iter_mut()) {
        let pending = std::mem::take(&mut o.pending);
        if pending.is_empty() {
            continue;
        }
        let last_step = o.done.last().cloned().unwrap_or_default();
        let earlier = o.done[..o.done.len().saturating_sub(1)].to_vec();
        let volume = name(e, o);
        let c = ctx(run, e, &volume, &server_name);
        let mut skipped: Vec<String> = Vec::new();
        let error = match &waited {
            Ok(w) => {
                journal_finished(&c, &pending, &w.finished);
                let mine: HashSet<i64> = pending.iter().map(|p| p.action.id).collect();
                let failed = pending.iter().position(|p| {
                    w.finished
                        .iter()
                        .any(|a| a.id == p.action.id && a.status == ActionStatus::Error)
                });
                // The actions after the first failed one depended on it.
                skipped = failed
                    .map(|i| {
                        pending[i + 1..]
                            .iter()
                            .map(|p| p.action.command.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                failed
                    .and_then(|i| w.finished.iter().find(|a| a.id == pending[i].action.id))
                    .map(|a| run.client.action_error(a))
                    .or_else(|| {
                        let running: Vec<i64> = w
                            .running
                            .iter()
                            .copied()
                            .filter(|id| mine.contains(id))
                            .collect();
                        (!running.is_empty()).then_some(Error::ActionTimeout {
                            running,
                            waited: w.waited,
                        })
                    })
            }
            Err(err) => Some(err.clone()),
        };
        if let Some(err) = error {
            let mut f = Failure::api(&last_step, err, &earlier);
            if !skipped.is_empty() {
                f.msg = format!(
                    "{}; what depended on it did not run ({})",
                    f.msg,
                    skipped.join(", ")
                );
            }
            o.fail(f);
        }
    }
}

/// The volumes as the last list shows them.
pub(super) fn final_views(index: &Index, entries: &[Entry], outcomes: &mut [Outcome]) {
    for (e, o) in entries.iter().zip(outcomes.iter_mut()) {
        if e.kind != Kind::Volume || o.done.is_empty() {
            continue;
        }
        if let Some(v) = o.id.and_then(|id| index.get(id)) {
            o.volume = Some(VolumeView::of(v, v.server.map(|s| index.server_name(s))));
        }
    }
}
