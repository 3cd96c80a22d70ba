//! The reconcile core both modules share as peers: the typed desired state
//! ([`desired`]), reading what is there ([`observe`] from a [`source`]),
//! the pure planner ([`plan`]), the steps carried out over the API
//! ([`apply`], with the guards and undo of [`guard`]), the binding of
//! deletions to the reviewed diff ([`reviewed`]) and the failure codes
//! ([`failure`]).
//!
//! Around its requests a real PH3-02 run also needs the host locks
//! ([`lock`]), taken before the run reads anything, the journal
//! ([`journal`]), and a [`Session`] that records the run's start and
//! finishes the entries a killed run left open (it reads the API to learn
//! what became of them) before the first change.

pub mod apply;
pub mod desired;
pub mod failure;
pub mod guard;
pub mod journal;
pub mod lock;
pub mod observe;
pub mod plan;
pub mod reviewed;
pub mod source;
pub mod view;

pub use desired::Mode;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::clock::{now_ms, rfc3339};
use source::Source;

use journal::{Entry, Event, Fate, History, Journal, Op};
use lock::{Holder, HostLocks};

/// A real run's journal and locks, open until it ends.
#[derive(Debug)]
pub struct Session {
    pub journal: Journal,
    _locks: HostLocks,
    /// Volumes kbv3 runs detached and did not attach again: id → server id.
    pub detached_before: HashMap<i64, i64>,
    /// How many entries of killed runs this run resolved.
    pub resolved: usize,
}

/// A run that holds the locks of its hosts, before it reads anything.
#[derive(Debug)]
pub struct Locked<'a> {
    dir: &'a Path,
    hosts: Vec<String>,
    holder: Holder,
    locks: HostLocks,
}

/// Locks the hosts a run will change (its entries' hosts) in the state
/// directory `dir`; nothing has been changed when this fails.
///
/// # Errors
/// As [`lock::acquire`].
pub fn lock(dir: &Path, hosts: Vec<String>) -> Result<Locked<'_>, String> {
    let holder = Holder {
        run: format!("{}-{}", rfc3339(now_ms()), std::process::id()),
        pid: std::process::id(),
        machine: lock::machine_name(),
        since: rfc3339(now_ms()),
    };
    let locks = lock::acquire(dir, &hosts, &holder)?;
    Ok(Locked {
        dir,
        hosts,
        holder,
        locks,
    })
}

impl Locked<'_> {
    /// Records the start (the confirmation code and diff the run acts on),
    /// and resolves the unfinished entries of its hosts from `src` (the
    /// lists the run read after it took its locks). Nothing has been
    /// changed when this fails.
    ///
    /// # Errors
    /// The journal cannot be opened or written, or a killed run's entry cannot be resolved.
    pub fn start(
        self,
        code: Option<String>,
        diff: Option<String>,
        src: &dyn Source,
    ) -> Result<Session, String> {
        let Locked {
            dir,
            hosts,
            holder,
            locks,
        } = self;
        let earlier = History::of(&journal::read(dir)?);
        let journal = Journal::open(dir, &holder.run)?;
        journal.write(Event::Start {
            code,
            diff,
            hosts: hosts.clone(),
            pid: holder.pid,
            machine: holder.machine,
        })?;
        let mine: HashSet<&String> = hosts.iter().collect();
        let mut resolved = 0;
        for e in earlier
            .unfinished()
            .filter(|e| mine.contains(&e.intent.host))
        {
            let (result, volume_id, detail) = resolve(e, src);
            journal.write(Event::Resolved {
                of_run: e.run.clone(),
                seq: e.seq,
                result,
                volume_id,
                detail,
            })?;
            resolved += 1;
        }
        let history = History::of(&journal::read(dir)?);
        Ok(Session {
            journal,
            _locks: locks,
            detached_before: history.detached_by_kbv3(),
            resolved,
        })
    }
}

/// What became of a killed run's request, from the volumes as they are
/// now: the fate, a created volume's id, and why.
pub fn resolve(e: &Entry, src: &dyn Source) -> (Fate, Option<i64>, String) {
    let now = e.volume_id.and_then(|id| src.volume(id).ok().flatten());
    let i = &e.intent;
    let (fate, why) = match (i.op, &now) {
        (Op::Delete, None) => (Fate::Done, "the volume is gone".to_string()),
        (Op::Delete, Some(_)) => (Fate::NotDone, "the volume still exists".into()),
        (Op::Detach, None) => (
            Fate::Done,
            "the volume is gone (deleted after its detach)".into(),
        ),
        (Op::Detach, Some(v)) if v.server.is_none() => {
            (Fate::Done, "the volume is attached to no server".into())
        }
        (Op::Detach, Some(v)) if v.server == i.server_id => {
            (Fate::NotDone, "the volume is still on that server".into())
        }
        (Op::Attach, Some(v)) if v.server.is_some() && v.server == i.server_id => {
            (Fate::Done, "the volume is on that server".into())
        }
        (Op::Resize, Some(v)) if i.size_gb.is_some_and(|s| v.size >= s) => {
            (Fate::Done, format!("the volume has {} GB", v.size))
        }
        (Op::Create, _) => {
            let found = src.volumes_named(&i.volume).unwrap_or_default();
            return match found.as_slice() {
                [v] => (
                    Fate::Done,
                    Some(v.id),
                    format!("volume {} exists ({})", i.volume, v.id),
                ),
                [] => (
                    Fate::NotDone,
                    None,
                    format!("no volume named {} exists", i.volume),
                ),
                _ => (
                    Fate::Done,
                    None,
                    format!("several volumes are named {}", i.volume),
                ),
            };
        }
        (Op::Update | Op::Protect, Some(_)) => (
            Fate::NotDone,
            "cannot be told from the volume; counted as not done".into(),
        ),
        _ => (Fate::NotDone, "the volume does not show it".into()),
    };
    (fate, None, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcloud::types::Volume;
    use crate::hcloud::Error;
    use journal::Intent;
    use serde_json::json;

    struct Lists(Vec<Volume>);

    impl Source for Lists {
        fn volume(&self, id: i64) -> Result<Option<Volume>, Error> {
            Ok(self.0.iter().find(|v| v.id == id).cloned())
        }
        fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, Error> {
            Ok(self.0.iter().filter(|v| v.name == name).cloned().collect())
        }
        fn server(&self, _: i64) -> Result<Option<crate::hcloud::types::Server>, Error> {
            Ok(None)
        }
        fn server_named(&self, _: &str) -> Result<Option<crate::hcloud::types::Server>, Error> {
            Ok(None)
        }
    }

    fn volume(id: i64, name: &str, server: Option<i64>) -> Volume {
        serde_json::from_value(json!({"id": id, "name": name, "server": server, "size": 10,
            "location": {"id": 1, "name": "nbg1", "description": "", "country": "DE", "city": "",
                         "latitude": 0.0, "longitude": 0.0, "network_zone": "eu-central"},
            "created": "2026-01-01T00:00:00Z", "linux_device": "/dev/x", "protection": {"delete": false},
            "labels": {}, "status": "available", "format": null}))
        .unwrap()
    }

    fn entry(op: Op, id: Option<i64>, name: &str, server: Option<i64>) -> Entry {
        Entry {
            run: "r".into(),
            seq: 1,
            at: String::new(),
            intent: Intent {
                op,
                host: "h".into(),
                volume: name.into(),
                volume_id: id,
                size_gb: Some(10),
                server_id: server,
                server: None,
                undo: false,
            },
            result: None,
            action_id: None,
            volume_id: id,
            touched_server: None,
            detail: None,
            resolved_by: None,
        }
    }

    /// (case, entry, volumes now, fate, created id)
    #[test]
    fn a_killed_runs_requests_are_resolved_from_the_lists() {
        let lists = Lists(vec![
            volume(1, "vol-a", Some(5)),
            volume(2, "vol-b", None),
            volume(3, "kbv3-c", Some(6)),
        ]);
        let cases = [
            (
                "delete that went through",
                entry(Op::Delete, Some(9), "vol-z", None),
                Fate::Done,
                None,
            ),
            (
                "delete that did not",
                entry(Op::Delete, Some(1), "vol-a", None),
                Fate::NotDone,
                None,
            ),
            (
                "detach that went through",
                entry(Op::Detach, Some(2), "vol-b", Some(5)),
                Fate::Done,
                None,
            ),
            (
                "detach that did not",
                entry(Op::Detach, Some(1), "vol-a", Some(5)),
                Fate::NotDone,
                None,
            ),
            (
                "attach that went through",
                entry(Op::Attach, Some(3), "kbv3-c", Some(6)),
                Fate::Done,
                None,
            ),
            (
                "create that went through",
                entry(Op::Create, None, "kbv3-c", Some(6)),
                Fate::Done,
                Some(3),
            ),
            (
                "create that did not",
                entry(Op::Create, None, "kbv3-d", Some(6)),
                Fate::NotDone,
                None,
            ),
        ];
        for (case, e, fate, id) in cases {
            let (got, created, _) = resolve(&e, &lists);
            assert_eq!((got, created), (fate, id), "{case}");
        }
    }
}
