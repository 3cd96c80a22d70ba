//! Steps 3 and 4 of a fleet run: each deletion re-read and re-checked
//! against what was reviewed, then deleted; a deletion refused for good
//! puts its volume back where kbv3 detached it from.

use std::collections::HashMap;

use crate::reconcile::apply::{self, Deleted, Failure};
use crate::reconcile::guard;
use crate::reconcile::plan::ServerRef;

use crate::modules::volumes::index::Index;
use crate::modules::volumes::params::{Entry, Kind};
use crate::modules::volumes::pool;

use super::{ctx, fresh_volume, label, name, Outcome, Run};

/// Re-checks and deletes the deletions still pending, `workers` at a time;
/// a deletion refused for good puts its volume back where kbv3 detached it from.
pub(super) fn delete_stage(run: &Run, index: &Index, entries: &[Entry], outcomes: &mut [Outcome]) {
    let server_name = |id: i64| index.server_name(id);
    let names: Vec<String> = outcomes
        .iter()
        .zip(entries)
        .map(|(o, e)| name(e, o))
        .collect();
    let items: Vec<usize> = (0..outcomes.len())
        .filter(|i| outcomes[*i].delete.is_some())
        .collect();
    let view: &[Outcome] = outcomes;
    let results = pool::run(&items, run.workers, |&i| {
        let (e, o) = (&entries[i], &view[i]);
        let c = ctx(run, e, &names[i], &server_name);
        let id = o.id.unwrap_or_default();
        let step = o.delete.as_ref().expect("a pending delete");
        // Where kbv3 took it off: this run, or an earlier one (journal).
        let by_kbv3 = o.detached_from.clone().or_else(|| {
            run.detached_before.get(&id).map(|s| ServerRef {
                id: *s,
                name: index.server_name(*s),
            })
        });
        // Only this run's own detach is undone: an earlier run's server may
        // hold its new volume by now.
        let undo = |f: Box<Failure>| match &o.detached_from {
            Some(from) => Err((guard::undo_detach(&c, id, from, f), Some(from.id))),
            None => Err((f, None)),
        };
        let fresh = match fresh_volume(run.client, index, id) {
            Ok(v) => v,
            Err(err) => {
                let f = Failure::api("re-read the volume before deleting it", err, &o.done);
                return Err((f, None));
            }
        };
        let expect = e.desired.expect.as_ref().expect("deletions have a guard");
        let ours = by_kbv3.as_ref().is_some_and(|f| expect_names(expect, f));
        if let Err(r) = guard::still_as_reviewed(expect, fresh.as_ref(), ours) {
            let f = Failure::refused(&step.text, r, &o.done);
            return match fresh.as_ref().map(|v| v.server) {
                Some(None) => undo(f),
                _ => Err((f, None)),
            };
        }
        match apply::delete(&c, id) {
            Ok(deleted) => Ok(deleted),
            Err(err) => {
                let f = Failure::api(&step.text, err, &o.done);
                if f.rerun_finishes {
                    Err((f, None))
                } else {
                    undo(f)
                }
            }
        }
    });
    for (i, result) in items.into_iter().zip(results) {
        let o = &mut outcomes[i];
        let step = o.delete.take().expect("a pending delete");
        match result {
            Ok(Deleted::Now) => {
                o.deleted = true;
                o.done.push(step.text);
            }
            Ok(Deleted::AnswerLost) => {
                o.deleted = true;
                o.warnings.push(format!(
                    "{}: the answer to the DELETE was lost; its retry found the volume gone, so this run deleted it",
                    step.text
                ));
                o.done.push(step.text);
            }
            Ok(Deleted::AlreadyGone) => o.warnings.push(format!(
                "{}: the volume was already gone (the API answered 404 at once); not counted as deleted by this run",
                step.text
            )),
            Err((f, put_back)) => {
                // Blocked even when the undo failed: its attach may still land.
                o.put_back_on = put_back;
                o.fail(f);
            }
        }
    }
}

/// True when the reviewed server (`expect.server`) is `s`.
fn expect_names(expect: &crate::reconcile::desired::Expect, s: &ServerRef) -> bool {
    use crate::reconcile::desired::ExpectServer;
    match &expect.server {
        ExpectServer::Attached(spec) => *spec == s.name || *spec == s.id.to_string(),
        _ => false,
    }
}

/// The servers that still have a legacy volume of this run (a deletion
/// that did not finish), and which volume.
pub(super) fn servers_with_legacy_volumes(
    index: &Index,
    entries: &[Entry],
    outcomes: &[Outcome],
) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    for (e, o) in entries.iter().zip(outcomes) {
        if e.kind != Kind::Deletion || o.failure.is_none() {
            continue;
        }
        let now = o.put_back_on.or_else(|| {
            o.id.or(e.desired.id)
                .and_then(|id| index.get(id))
                .and_then(|v| v.server)
        });
        if let Some(server) = now {
            out.insert(server, format!("its legacy volume {}", label(e, o)));
        }
    }
    out
}
