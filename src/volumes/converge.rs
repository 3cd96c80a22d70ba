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
    let mut outcomes = plan_all(index, entries);
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

/// Plans every entry from the index (pure: no request).
pub fn plan_all(index: &Index, entries: &[Entry]) -> Vec<Outcome> {
    entries.iter().map(|e| planned(index, e)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::params::{entries, VolumesParams};
    use serde_json::{json, Value};

    fn location(name: &str) -> Value {
        json!({"id": 1, "name": name, "description": "", "country": "DE", "city": "",
               "latitude": 0.0, "longitude": 0.0, "network_zone": "eu-central"})
    }

    fn index() -> Index {
        let server = |id: i64, name: &str, loc: &str| {
            serde_json::from_value(
                json!({"id": id, "name": name, "status": "running", "location": location(loc)}),
            )
            .unwrap()
        };
        let volume = |id: i64, name: &str, server: Option<i64>, size: u32| {
            serde_json::from_value(json!({"id": id, "name": name, "server": server, "size": size, "location": location("nbg1"),
                "created": "2026-01-01T00:00:00Z", "linux_device": format!("/dev/disk/by-id/scsi-0HC_Volume_{id}"),
                "protection": {"delete": false}, "labels": {}, "status": "available", "format": "ext4"})).unwrap()
        };
        Index::new(
            vec![
                server(1, "web-01", "nbg1"),
                server(2, "db-01", "nbg1"),
                server(3, "far-01", "hel1"),
            ],
            vec![
                volume(10, "vol-web-01", Some(1), 10),
                volume(11, "kbv3-db-01-data", None, 20),
                volume(12, "dup", None, 10),
                volume(13, "dup", None, 10),
            ],
        )
    }

    fn plan_args(args: Value) -> (Vec<Entry>, Vec<Outcome>) {
        let p: VolumesParams = serde_json::from_value(args).unwrap();
        let e = entries(&p, &mut Vec::new()).unwrap();
        let o = plan_all(&index(), &e);
        (e, o)
    }

    fn texts(o: &Outcome) -> Vec<String> {
        o.plan
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| s.text.clone()))
            .collect()
    }

    /// (case, entry, steps, failure code)
    #[test]
    fn each_entry_is_planned_from_the_lists() {
        let web = json!({"id": 10, "name": "vol-web-01", "size": 10, "location": "nbg1", "server": "web-01"});
        let cases: Vec<(&str, Value, Vec<&str>, Option<Code>)> = vec![
            (
                "create with server",
                json!({"volumes": [{"name": "kbv3-web-01-data", "size": 20, "server": "web-01"}]}),
                vec!["create kbv3-web-01-data (20 GB) in nbg1, attached to web-01"],
                None,
            ),
            (
                "fix: attach and grow",
                json!({"volumes": [{"name": "kbv3-db-01-data", "size": 30, "server": "db-01"}]}),
                vec![
                    "resize kbv3-db-01-data (11) from 20 GB to 30 GB",
                    "attach kbv3-db-01-data (11) to db-01",
                ],
                None,
            ),
            (
                "already ok",
                json!({"volumes": [{"name": "vol-web-01", "size": 10, "server": "web-01"}]}),
                vec![],
                None,
            ),
            (
                "deletion as reviewed",
                json!({"deletions": [{"id": 10, "expect": web}]}),
                vec![
                    "detach vol-web-01 (10) from web-01",
                    "delete vol-web-01 (10)",
                ],
                None,
            ),
            (
                "deletion of a volume since resized",
                json!({"deletions": [{"id": 10, "expect": {"id": 10, "size": 20}}]}),
                vec![],
                Some(Code::StalePlan),
            ),
            (
                "deletion already done",
                json!({"deletions": [{"id": 99, "expect": {"id": 99, "server": null}}]}),
                vec![],
                None,
            ),
            (
                "unknown server",
                json!({"volumes": [{"name": "v", "size": 10, "server": "ghost"}]}),
                vec![],
                Some(Code::NotFound),
            ),
            (
                "two volumes with one name",
                json!({"volumes": [{"name": "dup", "size": 10, "server": "web-01"}]}),
                vec![],
                Some(Code::IdentityMismatch),
            ),
            (
                "other location",
                json!({"volumes": [{"name": "kbv3-db-01-data", "size": 20, "server": "far-01"}]}),
                vec![],
                Some(Code::Refused),
            ),
        ];
        for (case, args, want, code) in cases {
            let (_, outcomes) = plan_args(args);
            let o = &outcomes[0];
            assert_eq!(texts(o), want, "{case}");
            assert_eq!(o.failure.as_ref().map(|f| f.code), code, "{case}");
        }
    }

    #[test]
    fn results_are_per_host_with_tallies() {
        let (e, o) = plan_args(json!({
            "volumes": [{"host": "web-01", "name": "kbv3-web-01-data", "size": 20, "server": "web-01"},
                        {"host": "ghost", "name": "v", "size": 10, "server": "ghost"}],
            "deletions": [{"host": "web-01", "id": 10, "expect": {"id": 10, "name": "vol-web-01", "server": "web-01"}},
                          {"host": "db-01", "id": 12, "expect": {"id": 12, "name": "old-name", "server": null}}]}));
        let r = crate::volumes::results::build(&e, &o, true, true);
        let web = &r["hosts"]["web-01"];
        assert_eq!(
            web["actions"],
            json!([
                "detach vol-web-01 (10) from web-01",
                "delete vol-web-01 (10)",
                "create kbv3-web-01-data (20 GB) in nbg1, attached to web-01"
            ])
        );
        assert_eq!(
            (web["created"].clone(), web["deleted"][0]["name"].clone()),
            (json!(true), json!("vol-web-01"))
        );
        assert_eq!(r["hosts"]["ghost"]["failure"]["code"], json!("not_found"));
        let stale = &r["hosts"]["db-01"];
        assert_eq!(
            (
                stale["failed"].clone(),
                stale["stale"][0]["volume"]["name"].clone()
            ),
            (json!(false), json!("dup"))
        );
        assert!(stale["msg"]
            .as_str()
            .unwrap()
            .contains("name old-name expected, found dup"));
        let t = &r["totals"];
        assert_eq!(
            (
                t["created"].clone(),
                t["created_gb"].clone(),
                t["deleted"].clone(),
                t["deleted_gb"].clone()
            ),
            (json!(1), json!(20), json!(1), json!(10))
        );
        assert_eq!(
            (t["stale"].clone(), t["failed_hosts"].clone()),
            (json!(1), json!(["ghost"]))
        );
        assert_eq!(
            r["volumes"][0]["diff"]["after_header"],
            json!("volume vol-web-01 (10) (after)")
        );
    }
}
