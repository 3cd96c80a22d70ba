//! The PH3-02 record, built from the journal (`ph3_02_journal.jsonl`):
//! `ph3_02_report.json` lists every run with what it changed on each host,
//! and `ph3_02_report.md` says the same for people. Both are rebuilt whole
//! from the journal, under its lock, so concurrent writers lose nothing and
//! every change a run made appears exactly once, in that run, those of a
//! killed run included (a later run resolves what it left unfinished).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{write_atomic, write_json_atomic};
use crate::reconcile::journal::{self, Entry, Event, Fate, History, Line, Op, JOURNAL_FILE};

/// The report's file names in the state directory.
pub const REPORT_JSON: &str = "ph3_02_report.json";
pub const REPORT_MD: &str = "ph3_02_report.md";

/// One run, as recorded.
#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub run: String,
    pub started_at: String,
    /// `None`: the run was killed (no end in the journal).
    pub finished_at: Option<String>,
    pub confirmation_code: Option<String>,
    pub diff: Option<String>,
    pub machine: String,
    pub pid: u32,
    pub hosts: BTreeMap<String, HostRecord>,
    pub totals: Totals,
}

/// What a run did on one host.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HostRecord {
    /// Deleted by this run's DELETE.
    pub deleted: Vec<VolumeRecord>,
    pub created: Option<VolumeRecord>,
    /// Attached, detached (and kept), grown, renamed, relabelled, protected.
    pub changed: Vec<Change>,
    /// Changes the plan did not intend, put back by this run.
    pub undone: Vec<Change>,
    /// DELETEs answered 404: gone before this run got to them.
    pub already_gone: Vec<Change>,
    pub failed: Vec<Change>,
    /// Sent by a killed run, outcome not known yet (a later run over the
    /// same host finds it out).
    pub unknown: Vec<Change>,
    /// Where the host side failed, when it did.
    pub host_side_failed: Option<String>,
}

/// A volume as the report shows it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub id: Option<i64>,
    pub name: String,
    pub size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub former_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    /// Set when a later run found out the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// One change, for the lists other than deleted and created.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    pub op: Op,
    pub volume: String,
    pub volume_id: Option<i64>,
    pub server: Option<String>,
    pub at: String,
    pub detail: Option<String>,
}

/// Counts of a run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Totals {
    pub deleted: usize,
    pub deleted_gb: u64,
    pub created: usize,
    pub created_gb: u64,
    pub changed: usize,
    pub undone: usize,
    pub already_gone: usize,
    pub failed: usize,
    pub unknown: usize,
}

/// What PH3-02 knows once its host side ran (`kbv3_inventory report
/// --host-side`): the hosts of the batch, the API stage's per-host result
/// (each volume's device), the inventory's mountpoints and the failures.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSideFacts {
    pub run: String,
    pub hosts: Vec<String>,
    /// The `hosts` of the API stage's result.
    #[serde(default)]
    pub api: BTreeMap<String, ApiHost>,
    /// Put before every mountpoint (`kbv3_mount_prefix`).
    #[serde(default)]
    pub mount_prefix: String,
    /// host → its mountpoint in the inventory (`kbv3_mountpoint`).
    #[serde(default)]
    pub mountpoints: BTreeMap<String, Option<String>>,
    /// host → why it failed.
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
}

/// A host's entry of the API stage's result, as far as the report reads it.
#[derive(Debug, Default, Deserialize)]
pub struct ApiHost {
    #[serde(default)]
    pub volume: Option<ApiVolume>,
}

/// The volume of a host's entry.
#[derive(Debug, Default, Deserialize)]
pub struct ApiVolume {
    #[serde(default)]
    pub linux_device: Option<String>,
}

/// Appends the host side's facts to the journal, one line per host.
pub fn record_host_side(dir: &Path, facts: &HostSideFacts) -> Result<(), String> {
    let lines = facts
        .hosts
        .iter()
        .map(|host| Event::HostSide {
            host: host.clone(),
            device: facts
                .api
                .get(host)
                .and_then(|h| h.volume.as_ref())
                .and_then(|v| v.linux_device.clone()),
            mountpoint: facts
                .mountpoints
                .get(host)
                .cloned()
                .flatten()
                .map(|m| format!("{}{m}", facts.mount_prefix)),
            failed: facts.failed.get(host).cloned(),
        })
        .collect();
    journal::Journal::open(dir, &facts.run)?.write_all(lines)
}

/// Rebuilds both report files from the journal in `dir`, under the
/// journal's lock; returns their paths and the number of runs.
pub fn rebuild(dir: &Path) -> Result<(PathBuf, PathBuf, usize), String> {
    let journal_path = dir.join(JOURNAL_FILE);
    let guard = File::options()
        .create(true)
        .append(true)
        .open(&journal_path)
        .and_then(|f| f.lock().map(|_| f))
        .map_err(|e| format!("cannot lock the journal {}: {e}", journal_path.display()))?;
    let lines = journal::read(dir)?;
    let runs = runs(&lines);
    let (json_path, md_path) = (dir.join(REPORT_JSON), dir.join(REPORT_MD));
    let written = write_json_atomic(&json_path, &runs)
        .and_then(|_| write_atomic(&md_path, markdown(&runs).as_bytes()))
        .map_err(|e| format!("{e:#}"));
    drop(guard);
    written.map(|_| (json_path, md_path, runs.len()))
}

/// Every run of the journal, in the order they started.
pub fn runs(lines: &[Line]) -> Vec<Run> {
    let history = History::of(lines);
    // Where each volume was detached from (for "former server").
    let detached_from: HashMap<i64, String> = history
        .entries
        .iter()
        .filter(|e| e.intent.op == Op::Detach && e.result == Some(Fate::Done))
        .filter_map(|e| Some((e.volume_id?, e.intent.server.clone()?)))
        .collect();
    let mut runs: Vec<Run> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for line in lines {
        if let Event::Start {
            code,
            diff,
            hosts,
            pid,
            machine,
        } = &line.event
        {
            at.insert(&line.run, runs.len());
            runs.push(Run {
                run: line.run.clone(),
                started_at: line.at.clone(),
                finished_at: None,
                confirmation_code: code.clone(),
                diff: diff.clone(),
                machine: machine.clone(),
                pid: *pid,
                hosts: hosts
                    .iter()
                    .map(|h| (h.clone(), HostRecord::default()))
                    .collect(),
                totals: Totals::default(),
            });
        }
    }
    for e in &history.entries {
        if let Some(run) = at.get(e.run.as_str()).map(|i| &mut runs[*i]) {
            let host = run.hosts.entry(e.intent.host.clone()).or_default();
            place(host, e, &detached_from);
        }
    }
    for line in lines {
        let Some(run) = at.get(line.run.as_str()).map(|i| &mut runs[*i]) else {
            continue;
        };
        match &line.event {
            Event::End { .. } => run.finished_at = Some(line.at.clone()),
            Event::HostSide {
                host,
                device,
                mountpoint,
                failed,
            } => {
                let h = run.hosts.entry(host.clone()).or_default();
                if let Some(c) = h.created.as_mut() {
                    c.device = device.clone().or(c.device.take());
                    c.mountpoint = mountpoint.clone().or(c.mountpoint.take());
                }
                h.host_side_failed = failed.clone();
            }
            _ => {}
        }
    }
    for run in &mut runs {
        run.totals = totals(&run.hosts);
    }
    runs
}

/// Puts one journal entry in its list.
fn place(host: &mut HostRecord, e: &Entry, detached_from: &HashMap<i64, String>) {
    let change = || Change {
        op: e.intent.op,
        volume: e.intent.volume.clone(),
        volume_id: e.volume_id,
        server: e.intent.server.clone(),
        at: e.at.clone(),
        detail: e.detail.clone(),
    };
    let volume = || VolumeRecord {
        id: e.volume_id,
        name: e.intent.volume.clone(),
        size: e.intent.size_gb,
        resolved_by: e.resolved_by.clone(),
        ..VolumeRecord::default()
    };
    match (e.result, e.intent.op) {
        (None | Some(Fate::Accepted), _) => host.unknown.push(change()),
        (Some(Fate::Failed | Fate::NotDone), _) => host.failed.push(change()),
        (Some(Fate::AlreadyDone), Op::Delete) => host.already_gone.push(change()),
        (Some(Fate::AlreadyDone), _) => {}
        (Some(Fate::Done), Op::Delete) => host.deleted.push(VolumeRecord {
            former_server: e.volume_id.and_then(|id| detached_from.get(&id).cloned()),
            ..volume()
        }),
        (Some(Fate::Done), Op::Create) => host.created = Some(volume()),
        (Some(Fate::Done), _) if e.intent.undo => host.undone.push(change()),
        (Some(Fate::Done), _) => host.changed.push(change()),
    }
}

fn totals(hosts: &BTreeMap<String, HostRecord>) -> Totals {
    let mut t = Totals::default();
    for h in hosts.values() {
        t.deleted += h.deleted.len();
        t.deleted_gb += h
            .deleted
            .iter()
            .map(|v| u64::from(v.size.unwrap_or(0)))
            .sum::<u64>();
        t.created += usize::from(h.created.is_some());
        t.created_gb += h
            .created
            .as_ref()
            .map_or(0, |v| u64::from(v.size.unwrap_or(0)));
        t.changed += h.changed.len();
        t.undone += h.undone.len();
        t.already_gone += h.already_gone.len();
        t.failed += h.failed.len();
        t.unknown += h.unknown.len();
    }
    t
}

/// The readable report: one section per run, oldest first.
pub fn markdown(runs: &[Run]) -> String {
    let mut out = String::from(
        "# PH3-02 report\n\nOne section per real run of PH3-02, oldest first, built from the journal \
         (ph3_02_journal.jsonl); ph3_02_report.json holds the same.\n",
    );
    for (i, run) in runs.iter().enumerate() {
        let t = &run.totals;
        let _ = write!(
            out,
            "\n## Run {} — {}\n\n- Started {} on {} (pid {}), {}\n- Diff: `{}`, confirmation code `{}`\n\
             - Deleted {} volumes ({} GB), created {} volumes ({} GB), other changes {}, undone {}, \
             already gone {}, failed {}, outcome unknown {}\n\n\
             | host | deleted | created | other changes | failed or unknown |\n|---|---|---|---|---|\n",
            i + 1,
            run.run,
            run.started_at,
            run.machine,
            run.pid,
            run.finished_at
                .as_ref()
                .map_or("interrupted: no end recorded".to_string(), |f| format!("finished {f}")),
            run.diff.as_deref().unwrap_or("none"),
            run.confirmation_code.as_deref().unwrap_or("none"),
            t.deleted,
            t.deleted_gb,
            t.created,
            t.created_gb,
            t.changed,
            t.undone,
            t.already_gone,
            t.failed,
            t.unknown,
        );
        for (host, h) in &run.hosts {
            let vol = |v: &VolumeRecord| {
                let mut s = format!(
                    "{} ({}, {} GB",
                    v.name,
                    v.id.unwrap_or_default(),
                    v.size.unwrap_or_default()
                );
                if let Some(f) = &v.former_server {
                    let _ = write!(s, ", from {f}");
                }
                if let Some(m) = &v.mountpoint {
                    let _ = write!(s, ", at {m}");
                }
                if let Some(r) = &v.resolved_by {
                    let _ = write!(s, ", outcome found by run {r}");
                }
                s.push(')');
                s
            };
            let changes = |cs: &[Change], what: &str| -> Vec<String> {
                cs.iter()
                    .map(|c| format!("{what}{:?} {}", c.op, c.volume).to_lowercase())
                    .collect()
            };
            let deleted: Vec<String> = h.deleted.iter().map(vol).collect();
            let other = [
                changes(&h.changed, ""),
                changes(&h.undone, "undone: "),
                changes(&h.already_gone, "already gone: "),
            ]
            .concat();
            let mut bad = [
                changes(&h.failed, "failed: "),
                changes(&h.unknown, "unknown: "),
            ]
            .concat();
            bad.extend(h.host_side_failed.iter().map(|f| format!("host side: {f}")));
            let _ = writeln!(
                out,
                "| {host} | {} | {} | {} | {} |",
                cell(&deleted.join("<br>")),
                cell(&h.created.as_ref().map(vol).unwrap_or_default()),
                cell(&other.join("<br>")),
                cell(&bad.join("<br>")),
            );
        }
    }
    out
}

/// A table cell: no pipes or line breaks from the data.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::journal::{Intent, Journal};

    fn intent(op: Op, id: Option<i64>, name: &str, host: &str) -> Intent {
        Intent {
            op,
            host: host.into(),
            volume: name.into(),
            volume_id: id,
            size_gb: Some(10),
            server_id: Some(1),
            server: Some(host.into()),
            undo: false,
        }
    }

    fn start(j: &Journal, hosts: &[&str]) {
        j.write(Event::Start {
            code: Some("c0de".into()),
            diff: None,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            pid: 1,
            machine: "ctl".into(),
        })
        .unwrap();
    }

    fn done(j: &Journal, seq: u64, fate: Fate, volume_id: Option<i64>) {
        j.write(Event::Outcome {
            seq,
            result: fate,
            action_id: None,
            volume_id,
            server_id: None,
            detail: None,
        })
        .unwrap();
    }

    #[test]
    fn every_change_appears_once_in_the_run_that_made_it() {
        let dir = tempfile::tempdir().unwrap();
        // Run 1 detaches and deletes one volume, then is killed mid-delete of another.
        let a = Journal::open(dir.path(), "run-1").unwrap();
        start(&a, &["web-01", "db-01"]);
        let s = a
            .intent(intent(Op::Detach, Some(7), "vol-web-01", "web-01"))
            .unwrap();
        done(&a, s, Fate::Done, None);
        let s = a
            .intent(intent(Op::Delete, Some(7), "vol-web-01", "web-01"))
            .unwrap();
        done(&a, s, Fate::Done, None);
        let killed = a
            .intent(intent(Op::Delete, Some(8), "vol-db-01", "db-01"))
            .unwrap();
        // Run 2 resolves it, meets a 404 and creates a volume.
        let b = Journal::open(dir.path(), "run-2").unwrap();
        start(&b, &["db-01"]);
        b.write(Event::Resolved {
            of_run: "run-1".into(),
            seq: killed,
            result: Fate::Done,
            volume_id: None,
            detail: "gone".into(),
        })
        .unwrap();
        let s = b
            .intent(intent(Op::Delete, Some(9), "vol-x", "db-01"))
            .unwrap();
        done(&b, s, Fate::AlreadyDone, None);
        let s = b
            .intent(intent(Op::Create, None, "kbv3-db-01-data", "db-01"))
            .unwrap();
        done(&b, s, Fate::Accepted, Some(50));
        done(&b, s, Fate::Done, None);
        b.write(Event::End {
            changed: true,
            failed_hosts: vec![],
        })
        .unwrap();
        record_host_side(
            dir.path(),
            &HostSideFacts {
                run: "run-2".into(),
                hosts: vec!["db-01".into()],
                api: [(
                    "db-01".to_string(),
                    ApiHost {
                        volume: Some(ApiVolume {
                            linux_device: Some("/dev/x".into()),
                        }),
                    },
                )]
                .into(),
                mount_prefix: "/srv".into(),
                mountpoints: [("db-01".to_string(), Some("/data/db".into()))].into(),
                ..HostSideFacts::default()
            },
        )
        .unwrap();
        let (json_path, md_path, n) = rebuild(dir.path()).unwrap();
        assert_eq!(n, 2);
        let runs: Vec<Run> = serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap();
        let (one, two) = (&runs[0], &runs[1]);
        assert_eq!(one.finished_at, None, "run 1 was killed");
        assert_eq!((one.totals.deleted, one.totals.deleted_gb), (2, 20));
        let db = &one.hosts["db-01"].deleted[0];
        assert_eq!((db.id, db.resolved_by.as_deref()), (Some(8), Some("run-2")));
        assert_eq!(
            one.hosts["web-01"].deleted[0].former_server.as_deref(),
            Some("web-01")
        );
        assert_eq!(
            (
                two.totals.deleted,
                two.totals.already_gone,
                two.totals.created
            ),
            (0, 1, 1)
        );
        let created = two.hosts["db-01"].created.as_ref().unwrap();
        assert_eq!(
            (created.id, created.mountpoint.as_deref()),
            (Some(50), Some("/srv/data/db"))
        );
        let md = std::fs::read_to_string(md_path).unwrap();
        assert!(
            md.contains("interrupted: no end recorded")
                && md.contains("outcome found by run run-2"),
            "{md}"
        );
    }

    #[test]
    fn concurrent_rebuilds_keep_every_record() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for w in 0..12 {
                let dir = dir.path();
                s.spawn(move || {
                    let j = Journal::open(dir, &format!("run-{w}")).unwrap();
                    start(&j, &["web-01"]);
                    rebuild(dir).unwrap();
                });
            }
        });
        let runs: Vec<Run> =
            serde_json::from_slice(&std::fs::read(dir.path().join(REPORT_JSON)).unwrap()).unwrap();
        assert_eq!(runs.len(), 12);
    }
}
