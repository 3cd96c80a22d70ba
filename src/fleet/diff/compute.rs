//! Computing the diff: the fate of every existing volume, the volumes to create, the totals.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{AlreadyOk, Diff, DiffTotals, ListedVolume, ToCreate, ToFix, STRATEGY};
use super::selector::LegacySelector;
use crate::fleet::plan::{Plan, PlannedVolume};
use crate::fleet::snapshot::{ProjectServer, Snapshot, VolumeRef};

/// What becomes of one existing volume.
enum Verdict {
    Delete(String),
    Fix(ToFix),
    Ok(AlreadyOk),
    LeaveAlone(String),
}

/// Decides one existing volume's fate.
fn judge(
    v: &VolumeRef,
    legacy: bool,
    target: Option<&PlannedVolume>,
    fleet: &BTreeSet<&str>,
    servers: &BTreeMap<&str, &ProjectServer>,
) -> Verdict {
    let attached_outside = v
        .server_name
        .as_deref()
        .filter(|s| !fleet.contains(s))
        .or_else(|| {
            v.server_id
                .filter(|_| v.server_name.is_none())
                .map(|_| "an unknown server")
        });
    if let Some(server) = attached_outside {
        return Verdict::LeaveAlone(format!(
            "attached to {server}, a server outside the fleet: never deleted by PH3-02"
        ));
    }
    let Some(p) = target else {
        return match (&v.server_name, v.name.starts_with("kbv3-")) {
            (None, _) if !legacy => Verdict::LeaveAlone(
                "unattached and not a legacy volume (the legacy selector does not match it): never deleted by PH3-02".into(),
            ),
            (None, _) => Verdict::Delete(
                "unattached legacy volume (orphan, matched by the legacy selector): does not follow the v3 convention (Option A: destroy)".into(),
            ),
            (Some(_), true) => Verdict::Delete(
                "a kbv3 volume that the plan does not list (Option A: destroy)".into(),
            ),
            (Some(s), false) => Verdict::Delete(format!(
                "legacy volume of {s}: does not follow the v3 convention kbv3-<hostname>-data (Option A: destroy & recreate)"
            )),
        };
    };
    let host_location = servers
        .get(p.hostname.as_str())
        .map(|s| s.location.as_str());
    if host_location.is_some_and(|l| l != v.location) {
        return Verdict::LeaveAlone(format!(
            "bears the target name of {} but is in {} while {} is in {}: volumes cannot move between locations; resolve by hand",
            p.hostname,
            v.location,
            p.hostname,
            host_location.unwrap_or_default()
        ));
    }
    if v.size_gb > p.size_gb {
        return Verdict::LeaveAlone(format!(
            "bears the target name of {} but has {} GB where the plan says {} GB: volumes cannot shrink; resolve by hand",
            p.hostname, v.size_gb, p.size_gb
        ));
    }
    let mut fixes = Vec::new();
    let mut problems = Vec::new();
    let move_volume = match v.server_name.as_deref() {
        Some(s) if s == p.hostname => false,
        Some(other) => {
            problems.push(format!("attached to {other}, not {}", p.hostname));
            fixes.push(format!("move from {other} to {}", p.hostname));
            true
        }
        None => {
            problems.push(format!("not attached to {}", p.hostname));
            fixes.push(format!("attach to {}", p.hostname));
            false
        }
    };
    if v.size_gb < p.size_gb {
        problems.push(format!(
            "{} GB where the plan says {} GB",
            v.size_gb, p.size_gb
        ));
        fixes.push(format!("grow to {} GB", p.size_gb));
    }
    if fixes.is_empty() {
        return Verdict::Ok(AlreadyOk {
            id: v.id,
            hostname: p.hostname.clone(),
            volume_name: v.name.clone(),
            size_gb: v.size_gb,
            location: v.location.clone(),
            reason: "exists with the planned size, attached to its server".into(),
        });
    }
    Verdict::Fix(ToFix {
        id: v.id,
        hostname: p.hostname.clone(),
        volume_name: v.name.clone(),
        size_gb: v.size_gb,
        planned_size_gb: p.size_gb,
        location: v.location.clone(),
        server_name: v.server_name.clone(),
        move_volume,
        fixes,
        reason: format!(
            "bears the target name but is {}: kept and fixed, never deleted",
            problems.join(" and ")
        ),
    })
}

/// Compares the plan with the existing volumes.
pub fn compute(
    plan: &Plan,
    existing: &Snapshot,
    legacy: &LegacySelector,
    generated_at: String,
    existing_source: String,
) -> Diff {
    let servers: BTreeMap<&str, &ProjectServer> = existing
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let fleet: BTreeSet<&str> = plan.volumes.iter().map(|p| p.hostname.as_str()).collect();
    let targets: BTreeMap<&str, &PlannedVolume> = plan
        .volumes
        .iter()
        .map(|p| (p.volume_name.as_str(), p))
        .collect();
    let mut diff = Diff {
        strategy: STRATEGY.into(),
        generated_at,
        existing_source,
        legacy_selector: legacy.clone(),
        fleet_servers: fleet
            .iter()
            .filter_map(|h| servers.get(h).map(|s| (h.to_string(), s.id)))
            .collect(),
        volumes_to_delete: Vec::new(),
        volumes_to_create: Vec::new(),
        volumes_to_fix: Vec::new(),
        volumes_ok: Vec::new(),
        volumes_left_alone: Vec::new(),
        missing_servers: Vec::new(),
        totals: DiffTotals::default(),
    };
    for e in &existing.volumes {
        let v = &e.volume;
        let target = targets.get(v.name.as_str()).copied();
        let is_legacy = legacy.matches(&v.name, &e.labels);
        match judge(v, is_legacy, target, &fleet, &servers) {
            Verdict::Delete(reason) => diff.volumes_to_delete.push(ListedVolume {
                labels: Some(e.labels.clone()),
                ..ListedVolume::of(v, reason)
            }),
            Verdict::Fix(f) => diff.volumes_to_fix.push(f),
            Verdict::Ok(o) => diff.volumes_ok.push(o),
            Verdict::LeaveAlone(reason) => {
                diff.volumes_left_alone.push(ListedVolume::of(v, reason))
            }
        }
    }
    let existing_names: BTreeSet<&str> = existing
        .volumes
        .iter()
        .map(|e| e.volume.name.as_str())
        .collect();
    for p in &plan.volumes {
        let server = servers.get(p.hostname.as_str());
        if server.is_none() {
            diff.missing_servers.push(p.hostname.clone());
        }
        if existing_names.contains(p.volume_name.as_str()) {
            continue;
        }
        diff.volumes_to_create.push(ToCreate {
            hostname: p.hostname.clone(),
            volume_name: p.volume_name.clone(),
            size_gb: p.size_gb,
            mountpoint: p.mountpoint.clone(),
            location: server.map(|s| s.location.clone()),
            server_id: server.map(|s| s.id),
            reason: "no volume of that name exists".into(),
        });
    }
    diff.totals = totals_of(&diff, existing.volumes.len(), plan.volumes.len());
    diff
}

impl ListedVolume {
    fn of(v: &VolumeRef, reason: String) -> Self {
        ListedVolume {
            id: v.id,
            name: v.name.clone(),
            size_gb: v.size_gb,
            location: v.location.clone(),
            server_id: v.server_id,
            server_name: v.server_name.clone(),
            labels: None,
            reason,
        }
    }
}

/// The totals the lists of a diff add up to.
pub(super) fn totals_of(d: &Diff, existing: usize, target: usize) -> DiffTotals {
    let mut by_location = BTreeMap::new();
    for c in &d.volumes_to_create {
        *by_location
            .entry(c.location.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    DiffTotals {
        existing,
        target,
        to_delete: d.volumes_to_delete.len(),
        to_delete_gb: d
            .volumes_to_delete
            .iter()
            .map(|v| u64::from(v.size_gb))
            .sum(),
        to_create: d.volumes_to_create.len(),
        to_create_gb: d
            .volumes_to_create
            .iter()
            .map(|c| u64::from(c.size_gb))
            .sum(),
        to_fix: d.volumes_to_fix.len(),
        ok: d.volumes_ok.len(),
        left_alone: d.volumes_left_alone.len(),
        left_alone_gb: d
            .volumes_left_alone
            .iter()
            .map(|v| u64::from(v.size_gb))
            .sum(),
        to_create_by_location: by_location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::diff::fixtures::{plan, snapshot, vol, vol_in};
    use crate::fleet::diff::validate;
    use crate::fleet::snapshot::ExistingVolume;

    fn names<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        it.collect()
    }

    /// (case, existing volumes, [to delete, to create (hosts), to fix, ok (hosts), left alone])
    type Case = (&'static str, Vec<ExistingVolume>, [Vec<&'static str>; 5]);

    #[test]
    fn diff_table() {
        let cases: Vec<Case> = vec![
            (
                "fresh project",
                vec![
                    vol(1, "vol-a", 10, Some("a")),
                    vol(2, "vol-b", 10, Some("b")),
                ],
                [
                    vec!["vol-a", "vol-b"],
                    vec!["a", "b"],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                "partial PH3-02",
                vec![
                    vol(2, "vol-b", 10, Some("b")),
                    vol(3, "kbv3-a-data", 20, Some("a")),
                ],
                [vec!["vol-b"], vec!["b"], vec![], vec!["a"], vec![]],
            ),
            (
                "everything done",
                vec![
                    vol(3, "kbv3-a-data", 20, Some("a")),
                    vol(4, "kbv3-b-data", 50, Some("b")),
                ],
                [vec![], vec![], vec![], vec!["a", "b"], vec![]],
            ),
            (
                "right name, too small: grown, never deleted",
                vec![vol(3, "kbv3-a-data", 10, Some("a"))],
                [vec![], vec!["b"], vec!["kbv3-a-data"], vec![], vec![]],
            ),
            (
                "right name, on another fleet server: moved",
                vec![vol(3, "kbv3-a-data", 20, Some("b"))],
                [vec![], vec!["b"], vec!["kbv3-a-data"], vec![], vec![]],
            ),
            (
                "right name, unattached (an earlier partial run): attached",
                vec![vol(3, "kbv3-a-data", 20, None)],
                [vec![], vec!["b"], vec!["kbv3-a-data"], vec![], vec![]],
            ),
            (
                "right name, too large: left alone",
                vec![vol(3, "kbv3-a-data", 40, Some("a"))],
                [vec![], vec!["b"], vec![], vec![], vec!["kbv3-a-data"]],
            ),
            (
                "right name, other location: left alone",
                vec![vol_in(3, "kbv3-a-data", 20, None, "hel1")],
                [vec![], vec!["b"], vec![], vec![], vec!["kbv3-a-data"]],
            ),
            (
                "orphans are deleted when the legacy selector matches them",
                vec![
                    vol(9, "kbv3-gone-data", 20, None),
                    vol(8, "scratch", 10, None),
                    vol(7, "vol-old", 10, None),
                ],
                [
                    vec!["vol-old"],
                    vec!["a", "b"],
                    vec![],
                    vec![],
                    vec!["kbv3-gone-data", "scratch"],
                ],
            ),
            (
                "attached to a fleet server: deleted whatever its name",
                vec![vol(8, "scratch", 10, Some("a"))],
                [vec!["scratch"], vec!["a", "b"], vec![], vec![], vec![]],
            ),
            (
                "attached outside the fleet: left alone, whatever its name",
                vec![
                    vol(8, "vol-x", 10, Some("outsider")),
                    vol(9, "kbv3-b-data", 50, Some("outsider")),
                ],
                [
                    vec![],
                    vec!["a"],
                    vec![],
                    vec![],
                    vec!["vol-x", "kbv3-b-data"],
                ],
            ),
        ];
        for (case, existing, [del, create, fix, ok, alone]) in cases {
            let d = compute(
                &plan(),
                &snapshot(existing),
                &LegacySelector::default(),
                "t".into(),
                "test".into(),
            );
            assert_eq!(
                names(d.volumes_to_delete.iter().map(|v| v.name.as_str())),
                del,
                "{case}: delete"
            );
            assert_eq!(
                names(d.volumes_to_create.iter().map(|v| v.hostname.as_str())),
                create,
                "{case}: create"
            );
            assert_eq!(
                names(d.volumes_to_fix.iter().map(|v| v.volume_name.as_str())),
                fix,
                "{case}: fix"
            );
            assert_eq!(
                names(d.volumes_ok.iter().map(|v| v.hostname.as_str())),
                ok,
                "{case}: ok"
            );
            assert_eq!(
                names(d.volumes_left_alone.iter().map(|v| v.name.as_str())),
                alone,
                "{case}: left alone"
            );
            assert_eq!(
                d.totals.to_delete + d.totals.to_fix + d.totals.ok + d.totals.left_alone,
                d.totals.existing,
                "{case}: every existing volume is accounted for"
            );
            assert_eq!(
                validate(&d, &plan()),
                Ok(()),
                "{case}: PH3-01's own diff is valid"
            );
        }
    }

    #[test]
    fn reasons_and_fixes_say_why() {
        let d = compute(
            &plan(),
            &snapshot(vec![
                vol(3, "kbv3-a-data", 10, Some("b")),
                vol(1, "vol-x", 10, Some("b")),
                vol(2, "vol-y", 10, Some("outsider")),
            ]),
            &LegacySelector::default(),
            "t".into(),
            "s".into(),
        );
        let fix = &d.volumes_to_fix[0];
        assert_eq!(fix.fixes, vec!["move from b to a", "grow to 20 GB"]);
        assert!(fix.move_volume);
        assert_eq!(
            fix.reason,
            "bears the target name but is attached to b, not a and 10 GB where the plan says 20 GB: kept and fixed, never deleted"
        );
        assert!(d.volumes_to_delete[0]
            .reason
            .starts_with("legacy volume of b: does not follow the v3 convention"));
        assert!(d.volumes_left_alone[0]
            .reason
            .starts_with("attached to outsider, a server outside the fleet"));
        assert_eq!(d.volumes_to_create[0].location.as_deref(), Some("nbg1"));
    }
}
