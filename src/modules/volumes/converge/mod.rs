//! Converges every entry of a fleet run against one [`Index`]:
//!
//! 1. plan each entry with the shared planner (pure, from the lists);
//! 2. run the deletions' steps up to their delete (the detaches),
//!    `concurrency` volumes at a time ([`apply`], shared with `kbv3_volume`),
//!    each detach guarded by a fresh enough read and checked against the
//!    server its action touched; wait for their actions at once (batched);
//! 3. read the volumes again (one paged list): each deletion must still be
//!    what was reviewed, unattached because kbv3 detached it from its
//!    reviewed server (this run, or an earlier one per the journal);
//! 4. delete those, `concurrency` at a time; a deletion refused for good
//!    puts its volume back on the server it was detached from;
//! 5. create, fix and attach the desired volumes, except on a server that
//!    still has one of its legacy volumes: no server ever has a legacy
//!    volume and its new volume attached at once; wait for them (batched);
//! 6. read the volumes once more for the results.
//!
//! A failing entry fails alone; the others go on.

mod delete;
mod wait;

use std::collections::HashMap;
use std::time::Duration;

use crate::hcloud::types::Volume;
use crate::hcloud::{Client, Error, VolumeFilter};
use crate::reconcile::apply::{self, Applied, Ctx, Failure, Pending};
use crate::reconcile::failure::{Code, Refusal};
use crate::reconcile::journal::Journal;
use crate::reconcile::observe;
use crate::reconcile::plan::{self, Plan, PlannedStep, ServerRef, Step, VolumeView};
use crate::reconcile::Mode;

use super::index::Index;
use super::params::{Entry, Kind};
use super::pool;
use delete::{delete_stage, servers_with_legacy_volumes};
use wait::{final_views, wait_all};

/// How old the last read of a volume may be when its detach goes out;
/// older (a run held back by rate pacing), it is read again first.
const FRESH: Duration = Duration::from_secs(10);

/// What a run converges with.
pub struct Run<'a> {
    pub client: &'a Client,
    /// The journal, for a real run that keeps one.
    pub journal: Option<&'a Journal>,
    /// Volumes earlier kbv3 runs detached (journal): id → server id.
    pub detached_before: HashMap<i64, i64>,
    pub workers: usize,
}

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
    /// This run's DELETE removed the volume (a 404 is not a deletion).
    pub deleted: bool,
    id: Option<i64>,
    pending: Vec<Pending>,
    /// A deletion whose steps before the delete are done.
    delete: Option<PlannedStep>,
    /// The server this run detached the volume from.
    detached_from: Option<ServerRef>,
    /// The server an undo put the volume back on.
    put_back_on: Option<i64>,
}

impl Outcome {
    fn fail(&mut self, f: Box<Failure>) {
        self.done = f.done.clone();
        self.failure = Some(f);
        self.delete = None;
        self.pending.clear();
    }

    fn absorb(&mut self, a: Applied) {
        self.id = a.id;
        self.done.extend(a.done);
        self.pending = a.pending;
        self.warnings.extend(a.warnings);
        if a.detached_from.is_some() {
            self.detached_from = a.detached_from;
        }
    }
}

/// Plans every entry from the index; in check mode nothing else happens.
pub fn converge(run: &Run, index: &mut Index, entries: &[Entry], mode: Mode) -> Vec<Outcome> {
    let mut outcomes = plan_all(index, entries);
    if mode.is_check() {
        return outcomes;
    }
    // 2. The deletions up to their delete (detach, unprotect).
    let detaches: Vec<Work> = outcomes
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| entries[*i].kind == Kind::Deletion)
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
    let guard =
        |i: usize, steps: &[PlannedStep]| fresh_enough(run.client, index, &entries[i], steps);
    run_stage(run, index, entries, &mut outcomes, &detaches, guard);
    wait_all(run, index, entries, &mut outcomes);
    // 3. One fresh list: the deletions' re-check.
    if outcomes.iter().any(|o| o.delete.is_some()) {
        match run.client.list_volumes(&VolumeFilter::default()) {
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
    }
    // 4. The deletions still as reviewed; the refused ones put back.
    delete_stage(run, index, entries, &mut outcomes);
    // 5. The desired volumes, on servers without a legacy volume left.
    let blocked = servers_with_legacy_volumes(index, entries, &outcomes);
    let desired: Vec<Work> = outcomes
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| entries[*i].kind == Kind::Volume)
        .filter_map(|(i, o)| {
            let plan = o.plan.as_ref().filter(|_| o.failure.is_none())?;
            if plan.steps.is_empty() {
                return None;
            }
            let target = plan.after.as_ref().and_then(|v| v.server);
            if let Some((server, why)) = target.and_then(|s| blocked.get(&s).map(|w| (s, w))) {
                let msg = format!(
                    "{} was left as it is: server {} still has {why}, and a server never gets its new volume next to a legacy one. \
                     Run PH3-02 again once that volume is off (see its message).",
                    entries[i].desired.label(),
                    index.server_name(server)
                );
                let first = plan.steps[0].text.clone();
                o.fail(Failure::refused(&first, Refusal::new(Code::Blocked, msg), &[]));
                return None;
            }
            Some((i, o.id, plan.steps.clone()))
        })
        .collect();
    run_stage(run, index, entries, &mut outcomes, &desired, |_, _| Ok(()));
    wait_all(run, index, entries, &mut outcomes);
    // 6. The final read.
    let changed = outcomes.iter().any(|o| !o.done.is_empty());
    if changed {
        if let Ok(volumes) = run.client.list_volumes(&VolumeFilter::default()) {
            index.replace_volumes(volumes);
            final_views(index, entries, &mut outcomes);
        }
    }
    outcomes
}

/// Plans every entry from the index (pure: no request).
pub fn plan_all(index: &Index, entries: &[Entry]) -> Vec<Outcome> {
    entries.iter().map(|e| planned(index, e)).collect()
}

/// An entry's index, its volume's id and the steps to run.
type Work = (usize, Option<i64>, Vec<PlannedStep>);

/// The step context of one entry, whose volume is named `volume`.
pub(super) fn ctx<'a>(
    run: &'a Run,
    e: &'a Entry,
    volume: &'a str,
    server_name: &'a (dyn Fn(i64) -> String + Sync),
) -> Ctx<'a> {
    Ctx {
        client: run.client,
        journal: run.journal,
        host: &e.host,
        volume,
        server_name,
    }
}

/// Runs the steps of every work item, `workers` volumes at a time, each
/// after its `guard`; a failure fails its entry only.
fn run_stage(
    run: &Run,
    index: &Index,
    entries: &[Entry],
    outcomes: &mut [Outcome],
    work: &[Work],
    guard: impl Fn(usize, &[PlannedStep]) -> Result<(), Box<Failure>> + Sync,
) {
    let names: Vec<String> = outcomes
        .iter()
        .zip(entries)
        .map(|(o, e)| name(e, o))
        .collect();
    let server_name = |id: i64| index.server_name(id);
    let applied = pool::run(work, run.workers, |(i, id, steps)| {
        guard(*i, steps)?;
        apply::apply(
            &ctx(run, &entries[*i], &names[*i], &server_name),
            *id,
            steps,
        )
    });
    for ((i, _, _), result) in work.iter().zip(applied) {
        let o = &mut outcomes[*i];
        match result {
            Ok(a) => o.absorb(a),
            Err(mut f) => {
                f.done = [o.done.clone(), f.done].concat();
                o.fail(f);
            }
        }
    }
}

/// A volume as the lists show it, or read again when they are older than
/// [`FRESH`] (rate pacing held the run back).
pub(super) fn fresh_volume(
    client: &Client,
    index: &Index,
    id: i64,
) -> Result<Option<Volume>, Error> {
    if index.age() < FRESH {
        Ok(index.get(id).cloned())
    } else {
        client.get_volume(id)
    }
}

/// The guard of a detach: when the lists are older than [`FRESH`], the
/// volume is read again and must still be on the server the plan read.
fn fresh_enough(
    client: &Client,
    index: &Index,
    e: &Entry,
    steps: &[PlannedStep],
) -> Result<(), Box<Failure>> {
    let Some((from, text)) = steps.iter().find_map(|s| match &s.step {
        Step::Detach { from } => Some((from, &s.text)),
        _ => None,
    }) else {
        return Ok(());
    };
    let id = e.desired.id.unwrap_or_default();
    let fresh = fresh_volume(client, index, id)
        .map_err(|err| Failure::api("re-read the volume before detaching it", err, &[]))?;
    let found = match fresh.as_ref().map(|v| v.server) {
        Some(Some(s)) if s == from.id => return Ok(()),
        Some(Some(s)) => format!("attached to server {s} now, not to {}", from.name),
        Some(None) => format!("no longer attached to {}", from.name),
        None => "gone".to_string(),
    };
    let msg = format!(
        "the plan is stale for volume {} ({id}): {found} when the run was about to detach it. \
         It was left alone; run PH3-01 again to refresh the diff and review it before running PH3-02.",
        e.desired.label()
    );
    Err(Failure::refused(
        text,
        Refusal::new(Code::StalePlan, msg),
        &[],
    ))
}

/// The volume's name: for a deletion the reviewed one (a rename since the
/// review is a difference, reported in `msg`), else the current one.
pub fn name(e: &Entry, o: &Outcome) -> String {
    let reviewed = e.desired.expect.as_ref().and_then(|x| x.name.clone());
    let current = o.volume.as_ref().map(|v| v.name.clone());
    reviewed.or(current).unwrap_or_else(|| e.desired.label())
}

/// The volume's name and id, for messages.
pub(super) fn label(e: &Entry, o: &Outcome) -> String {
    match o.id.or(e.desired.id) {
        Some(id) => format!("{} ({id})", name(e, o)),
        None => name(e, o),
    }
}

/// Observes (from the index) and plans one entry. A refused entry keeps
/// the volume as observed, so that its result still names it.
fn planned(index: &Index, e: &Entry) -> Outcome {
    let mut o = Outcome::default();
    let observed = match observe::observe(index, &e.desired) {
        Ok(obs) => obs,
        Err(r) => {
            o.failure = Some(Failure::refused("observe", r, &[]));
            return o;
        }
    };
    match plan::plan(&e.desired, &observed) {
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
    use crate::modules::volumes::params::{entries, VolumesParams};
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
        let built = crate::modules::volumes::results::Results::build(&e, &o, Mode::Check, true);
        let r = serde_json::to_value(built.printed()).unwrap();
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
        // The hosts that are not done, and the volumes the host side checks.
        assert_eq!(
            r["not_ok"],
            json!({"db-01": stale["msg"], "ghost": r["hosts"]["ghost"]["msg"]})
        );
        // A volume still to be created has no device: nothing for a host side yet.
        assert_eq!(web["volume"]["linux_device"], json!(null));
        assert_eq!(r["checks"], json!({}));
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
