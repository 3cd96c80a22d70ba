//! The result of a fleet run, typed and serialised once: one entry per
//! volume, one per host (what a per-host task reads), the run's tallies
//! (what a summary prints) and two small per-host maps for PH3-02.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::reconcile::failure::{Code, Details};
use crate::reconcile::plan::Step;
use crate::reconcile::view::{VolumeDiff, VolumeView};
use crate::reconcile::Mode;

use super::converge::{is_stale, name, Outcome};
use super::params::{Entry, Kind};

/// What became of one entry.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeResult {
    pub host: String,
    pub kind: Kind,
    pub name: String,
    pub changed: bool,
    pub failed: bool,
    /// Left alone because it changed since the review.
    pub stale: bool,
    pub created: bool,
    pub deleted: bool,
    pub volume: Option<VolumeView>,
    pub actions: Vec<String>,
    pub msg: String,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<VolumeDiff>,
}

/// A volume left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Stale<'a> {
    pub volume: &'a Option<VolumeView>,
    pub msg: &'a str,
}

/// One host: its volume (the first desired one), what was deleted, what
/// was left alone, and whether anything failed.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult<'a> {
    pub changed: bool,
    pub failed: bool,
    pub volume: Option<&'a Option<VolumeView>>,
    pub created: bool,
    pub deleted: Vec<&'a Option<VolumeView>>,
    pub stale: Vec<Stale<'a>>,
    pub actions: Vec<&'a str>,
    pub msg: String,
    pub volumes: Vec<&'a VolumeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'a Details>,
}

/// The run's tallies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub hosts: usize,
    pub created: usize,
    pub created_gb: u64,
    pub fixed: usize,
    pub ok: usize,
    pub deleted: usize,
    pub deleted_gb: u64,
    pub stale: usize,
    pub failed: usize,
    pub failed_hosts: Vec<String>,
}

/// What PH3-02's host side checks of a host's volume.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub device: String,
    pub size: u32,
}

/// Every entry's result and what is derived from them.
#[derive(Debug, Clone)]
pub struct Results {
    pub volumes: Vec<VolumeResult>,
    pub totals: Totals,
    /// Why a host is not done, for the hosts that are not.
    pub not_ok: BTreeMap<String, String>,
    /// The hosts whose volume has a device, and its device and size.
    pub checks: BTreeMap<String, Check>,
}

/// The results as the module prints them.
#[derive(Debug, Serialize)]
pub struct Printed<'a> {
    pub volumes: &'a [VolumeResult],
    pub hosts: BTreeMap<&'a str, HostResult<'a>>,
    pub checks: &'a BTreeMap<String, Check>,
    pub not_ok: &'a BTreeMap<String, String>,
    pub totals: &'a Totals,
}

impl Results {
    /// The results of every entry, host and the totals.
    pub fn build(entries: &[Entry], outcomes: &[Outcome], mode: Mode, diff: bool) -> Self {
        let volumes: Vec<VolumeResult> = entries
            .iter()
            .zip(outcomes)
            .map(|(e, o)| entry_result(e, o, mode, diff))
            .collect();
        let hosts = hosts_of(&volumes);
        let totals = totals(&volumes, &hosts);
        // Each host's (first) desired volume, found once rather than per host.
        let mut desired: BTreeMap<&str, &Entry> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.kind == Kind::Volume) {
            desired.entry(e.host.as_str()).or_insert(e);
        }
        let mut not_ok = BTreeMap::new();
        let mut checks = BTreeMap::new();
        for (h, host) in &hosts {
            if let Some(msg) = refusal(host, desired.get(h).copied(), mode) {
                not_ok.insert((*h).to_string(), msg);
            }
            // A volume the API shows attached (a device path): the host side's.
            if let Some(Some(v)) = host.volume {
                if let Some(device) = &v.linux_device {
                    let check = Check {
                        device: device.clone(),
                        size: v.size,
                    };
                    checks.insert((*h).to_string(), check);
                }
            }
        }
        Results {
            volumes,
            totals,
            not_ok,
            checks,
        }
    }

    /// The results as printed.
    pub fn printed(&self) -> Printed<'_> {
        Printed {
            volumes: &self.volumes,
            hosts: hosts_of(&self.volumes),
            checks: &self.checks,
            not_ok: &self.not_ok,
            totals: &self.totals,
        }
    }

    /// True when any volume changed.
    pub fn changed(&self) -> bool {
        self.volumes.iter().any(|v| v.changed)
    }

    /// The volumes left alone because they changed since the review.
    pub fn stale(&self) -> impl Iterator<Item = &VolumeResult> {
        self.volumes.iter().filter(|v| v.stale)
    }

    /// The failure codes of the deletions that were refused or failed.
    pub fn refused_deletions(&self) -> Vec<Code> {
        self.volumes
            .iter()
            .filter(|v| v.kind == Kind::Deletion && v.failed)
            .filter_map(|v| v.failure.as_ref().map(|f| f.code))
            .collect()
    }
}

/// Why a host is not done, if it is not: something failed or was left
/// stale, or, in a real run, its volume is not attached to its server with
/// the size asked for. PH3-02's per-host check reads these (`not_ok`) and
/// its host side each volume's `device` and `size` (`checks`), two small
/// maps: Ansible pays for a variable's size each time a host's task
/// touches it, and the whole result is large.
fn refusal(host: &HostResult, desired: Option<&Entry>, mode: Mode) -> Option<String> {
    if host.failed || !host.stale.is_empty() {
        return Some(host.msg.clone());
    }
    let e = desired.filter(|_| !mode.is_check())?;
    let server = e.desired.server.as_deref().unwrap_or_default();
    let size = e.desired.size.unwrap_or_default();
    let v = host.volume.and_then(Option::as_ref);
    if v.is_some_and(|v| v.server_name.as_deref() == Some(server) && v.size == size) {
        return None;
    }
    let shows = v.map_or_else(
        || "no volume".to_string(),
        |v| {
            format!(
                "{} GB attached to {}",
                v.size,
                v.server_name.as_deref().unwrap_or("no server")
            )
        },
    );
    Some(format!(
        "{}: expected attached to {server} with {size} GB, the API shows {shows}",
        e.desired.label()
    ))
}

/// True when the entry has (or, in check mode, would have) this step.
fn has(o: &Outcome, mode: Mode, f: fn(&Step) -> bool) -> bool {
    let Some(plan) = &o.plan else { return false };
    plan.steps
        .iter()
        .any(|s| f(&s.step) && (mode.is_check() || o.done.contains(&s.text)))
}

fn entry_result(e: &Entry, o: &Outcome, mode: Mode, diff: bool) -> VolumeResult {
    let planned: Vec<String> = o
        .plan
        .as_ref()
        .map(|p| p.steps.iter().map(|s| s.text.clone()).collect())
        .unwrap_or_default();
    let actions = if mode.is_check() {
        planned.clone()
    } else {
        o.done.clone()
    };
    let deleted = if mode.is_check() {
        has(o, Mode::Check, |s| matches!(s, Step::Delete { .. }))
    } else {
        o.deleted
    };
    let subject = o.volume.as_ref().map_or_else(
        || match e.desired.id {
            Some(id) => format!("{} ({id})", name(e, o)),
            None => name(e, o),
        },
        VolumeView::label,
    );
    let msg = match (&o.failure, actions.is_empty(), mode.is_check()) {
        (Some(f), _, _) if o.done.is_empty() => f.msg.clone(),
        (Some(f), _, _) if f.rerun_finishes => format!(
            "{}. Done before the failure: {}. Rerun to finish (same code, no refresh needed)",
            f.msg.trim_end_matches('.'),
            o.done.join("; ")
        ),
        (Some(f), _, _) => format!("{} (done: {})", f.msg, o.done.join("; ")),
        (None, true, _) if o.volume.is_none() => {
            format!("volume {subject} does not exist (no change)")
        }
        (None, true, _) => format!("volume {subject} is as requested (no change)"),
        (None, false, true) => format!("would {}", actions.join("; ")),
        (None, false, false) => actions.join("; "),
    };
    let diff = o
        .plan
        .as_ref()
        .filter(|_| diff && !planned.is_empty())
        .map(|plan| VolumeDiff::of(&plan.before, &plan.after, &subject));
    VolumeResult {
        host: e.host.clone(),
        kind: e.kind,
        name: name(e, o),
        changed: !actions.is_empty(),
        failed: o.failure.is_some() && !is_stale(o),
        stale: is_stale(o),
        created: has(o, mode, |s| matches!(s, Step::Create { .. })),
        deleted,
        volume: o.volume.clone(),
        actions,
        msg,
        warnings: o.warnings.clone(),
        failure: o.failure.as_ref().map(|f| f.details()),
        diff,
    }
}

/// Each host's results, by host.
fn hosts_of(volumes: &[VolumeResult]) -> BTreeMap<&str, HostResult<'_>> {
    let mut by_host: BTreeMap<&str, Vec<&VolumeResult>> = BTreeMap::new();
    for v in volumes {
        by_host.entry(v.host.as_str()).or_default().push(v);
    }
    by_host
        .into_iter()
        .map(|(h, vs)| (h, host_result(vs)))
        .collect()
}

fn host_result(vs: Vec<&VolumeResult>) -> HostResult<'_> {
    let of_kind = |k: Kind| vs.iter().copied().filter(move |v| v.kind == k);
    let failed: Vec<&VolumeResult> = vs.iter().copied().filter(|v| v.failed).collect();
    let msgs = if failed.is_empty() { &vs } else { &failed };
    HostResult {
        changed: vs.iter().any(|v| v.changed),
        failed: !failed.is_empty(),
        volume: of_kind(Kind::Volume).next().map(|v| &v.volume),
        created: of_kind(Kind::Volume).any(|v| v.created),
        deleted: of_kind(Kind::Deletion)
            .filter(|v| v.deleted)
            .map(|v| &v.volume)
            .collect(),
        stale: vs
            .iter()
            .filter(|v| v.stale)
            .map(|v| Stale {
                volume: &v.volume,
                msg: &v.msg,
            })
            .collect(),
        actions: vs
            .iter()
            .flat_map(|v| v.actions.iter().map(String::as_str))
            .collect(),
        msg: msgs
            .iter()
            .map(|v| v.msg.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        failure: failed.first().and_then(|v| v.failure.as_ref()),
        volumes: vs,
    }
}

fn totals(volumes: &[VolumeResult], hosts: &BTreeMap<&str, HostResult>) -> Totals {
    let kind = |k: Kind| volumes.iter().filter(move |v| v.kind == k);
    let size = |v: &VolumeResult| v.volume.as_ref().map_or(0, |v| u64::from(v.size));
    let created: Vec<&VolumeResult> = kind(Kind::Volume).filter(|v| v.created).collect();
    let deleted: Vec<&VolumeResult> = kind(Kind::Deletion).filter(|v| v.deleted).collect();
    Totals {
        hosts: hosts.len(),
        created: created.len(),
        created_gb: created.iter().map(|v| size(v)).sum(),
        fixed: kind(Kind::Volume)
            .filter(|v| !v.created && v.changed && !v.failed)
            .count(),
        ok: kind(Kind::Volume)
            .filter(|v| !v.changed && !v.failed)
            .count(),
        deleted: deleted.len(),
        deleted_gb: deleted.iter().map(|v| size(v)).sum(),
        stale: volumes.iter().filter(|v| v.stale).count(),
        failed: volumes.iter().filter(|v| v.failed).count(),
        failed_hosts: hosts
            .iter()
            .filter(|(_, h)| h.failed)
            .map(|(name, _)| (*name).to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::desired::{Desired, State};

    fn entry(host: &str, size: u32) -> Entry {
        Entry {
            host: host.into(),
            kind: Kind::Volume,
            desired: Desired {
                name: Some(format!("kbv3-{host}-data")),
                state: State::Present,
                size: Some(size),
                server: Some(host.into()),
                ..Desired::default()
            },
        }
    }

    fn attached(host: &str, size: u32, device: Option<&str>) -> Outcome {
        let mut o = Outcome::default();
        o.volume = Some(VolumeView {
            id: Some(1),
            name: format!("kbv3-{host}-data"),
            size,
            location: "nbg1".into(),
            server: Some(1),
            server_name: Some(host.into()),
            linux_device: device.map(str::to_string),
            labels: Default::default(),
            status: "available".into(),
            format: None,
            delete_protection: false,
            created: None,
        });
        o
    }

    #[test]
    fn the_host_side_gets_the_volumes_with_a_device_and_not_ok_the_others() {
        let entries = [entry("a", 20), entry("b", 20), entry("c", 30)];
        let outcomes = [
            attached("a", 20, Some("/dev/disk/by-id/scsi-0HC_Volume_1")),
            attached("b", 20, None),
            attached("c", 20, Some("/dev/disk/by-id/scsi-0HC_Volume_3")),
        ];
        let r = Results::build(&entries, &outcomes, Mode::Apply, false);
        let checks: Vec<(&str, &str, u32)> = r
            .checks
            .iter()
            .map(|(h, c)| (h.as_str(), c.device.as_str(), c.size))
            .collect();
        assert_eq!(
            checks,
            [
                ("a", "/dev/disk/by-id/scsi-0HC_Volume_1", 20),
                ("c", "/dev/disk/by-id/scsi-0HC_Volume_3", 20)
            ]
        );
        // c asked for 30 GB: not done, with what the API shows.
        assert_eq!(r.not_ok.keys().collect::<Vec<_>>(), ["c"]);
        assert!(r.not_ok["c"]
            .contains("expected attached to c with 30 GB, the API shows 20 GB attached to c"));
        // In check mode nothing is expected to be done yet.
        let planned = Results::build(&entries, &outcomes, Mode::Check, false);
        assert!(planned.not_ok.is_empty());
    }
}
