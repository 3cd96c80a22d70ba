//! Checking a diff as a whole against the fleet's plan before anything acts on it.

use std::collections::{BTreeMap, BTreeSet};

use super::compute::totals_of;
use super::model::{Diff, STRATEGY};
use crate::fleet::plan::{Plan, PlannedVolume};
use crate::hcloud::types::Labels;

/// Checks a diff as a whole against the fleet's plan. Every problem is one
/// line of the error; an `Ok` diff can be executed as it stands.
pub fn validate(d: &Diff, plan: &Plan) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if let Err(e) = d.legacy_selector.check() {
        problems.push(e);
    }
    if d.strategy != STRATEGY {
        problems.push(format!(
            "strategy '{}' is unknown; the only strategy is {STRATEGY}",
            d.strategy
        ));
    }
    let existing = d.volumes_to_delete.len()
        + d.volumes_to_fix.len()
        + d.volumes_ok.len()
        + d.volumes_left_alone.len();
    let want = totals_of(d, existing, plan.volumes.len());
    if d.totals != want {
        problems.push(format!(
            "totals do not agree with the lists: the file says {}, the lists add up to {}",
            serde_json::to_string(&d.totals).unwrap_or_default(),
            serde_json::to_string(&want).unwrap_or_default()
        ));
    }
    let fleet: BTreeMap<&str, &PlannedVolume> = plan
        .volumes
        .iter()
        .map(|p| (p.hostname.as_str(), p))
        .collect();
    let target_names: BTreeSet<&str> = plan
        .volumes
        .iter()
        .map(|p| p.volume_name.as_str())
        .collect();

    // Every host the diff names is in the fleet, with its own target volume.
    let mut named_hosts: Vec<(&str, &str, &str)> = Vec::new();
    named_hosts.extend(d.volumes_to_create.iter().map(|c| {
        (
            c.hostname.as_str(),
            c.volume_name.as_str(),
            "volumes_to_create",
        )
    }));
    named_hosts.extend(d.volumes_to_fix.iter().map(|c| {
        (
            c.hostname.as_str(),
            c.volume_name.as_str(),
            "volumes_to_fix",
        )
    }));
    named_hosts.extend(
        d.volumes_ok
            .iter()
            .map(|c| (c.hostname.as_str(), c.volume_name.as_str(), "volumes_ok")),
    );
    let unknown: BTreeSet<&str> = named_hosts
        .iter()
        .map(|(h, _, _)| *h)
        .chain(
            d.volumes_to_delete
                .iter()
                .filter_map(|v| v.server_name.as_deref()),
        )
        .filter(|h| !fleet.contains_key(h))
        .collect();
    let unknown: BTreeSet<&str> = unknown
        .into_iter()
        .chain(d.fleet_servers.keys().map(String::as_str))
        .filter(|h| !fleet.contains_key(h))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "the diff names hosts that are not in the inventory: {}",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    for (host, volume, list) in &named_hosts {
        if let Some(p) = fleet.get(host).filter(|p| p.volume_name != *volume) {
            problems.push(format!(
                "{list}: {volume} is not the target volume of {host} ({})",
                p.volume_name
            ));
        }
    }
    // Every fleet host is accounted for: the diff was made from this fleet.
    let covered: BTreeSet<&str> = named_hosts
        .iter()
        .map(|(_, v, _)| *v)
        .chain(d.volumes_left_alone.iter().map(|v| v.name.as_str()))
        .collect();
    let uncovered: Vec<&str> = plan
        .volumes
        .iter()
        .filter(|p| !covered.contains(p.volume_name.as_str()))
        .map(|p| p.hostname.as_str())
        .collect();
    if !uncovered.is_empty() {
        problems.push(format!(
            "the diff has no entry for hosts of the inventory: {}",
            uncovered.join(", ")
        ));
    }
    // No volume twice, by id or by name.
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    let entries = d
        .volumes_to_delete
        .iter()
        .map(|v| (Some(v.id), v.name.as_str()))
        .chain(
            d.volumes_to_fix
                .iter()
                .map(|v| (Some(v.id), v.volume_name.as_str())),
        )
        .chain(
            d.volumes_ok
                .iter()
                .map(|v| (Some(v.id), v.volume_name.as_str())),
        )
        .chain(
            d.volumes_left_alone
                .iter()
                .map(|v| (Some(v.id), v.name.as_str())),
        )
        .chain(
            d.volumes_to_create
                .iter()
                .map(|v| (None, v.volume_name.as_str())),
        );
    for (id, name) in entries {
        if let Some(id) = id.filter(|id| !ids.insert(*id)) {
            problems.push(format!("volume id {id} appears more than once"));
        }
        if !names.insert(name) {
            problems.push(format!("volume name {name} appears more than once"));
        }
    }
    // Deletions: complete, never a planned target, orphans only by the selector.
    for v in &d.volumes_to_delete {
        let no_labels = Labels::default();
        if v.server_name.is_none()
            && d.legacy_selector.label_selector.is_none()
            && !d.legacy_selector.matches(&v.name, &no_labels)
        {
            problems.push(format!(
                "volumes_to_delete: {} ({}) is unattached but the legacy selector ({}) does not match it",
                v.name,
                v.id,
                d.legacy_selector.describe()
            ));
        }
        let what = format!("volumes_to_delete: {} ({})", v.name, v.id);
        if target_names.contains(v.name.as_str()) {
            problems.push(format!(
                "{what} is a planned target volume; target volumes are never deleted"
            ));
        }
        if v.id <= 0 || v.name.is_empty() || v.location.is_empty() || v.size_gb == 0 {
            problems.push(format!("{what} lacks its id, name, size or location"));
        }
        if v.server_id.is_some() != v.server_name.is_some() {
            problems.push(format!(
                "{what} must have both server_id and server_name, or both null for an unattached volume"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::diff::fixtures::{plan, valid};

    /// (case, edit of a valid diff, start of the one problem it must cause)
    #[test]
    fn hand_edits_are_refused() {
        type Edit = fn(&mut Diff);
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "totals left alone",
                |d| d.volumes_to_delete.pop().map(drop).unwrap_or(()),
                "totals do not agree with the lists",
            ),
            (
                "a target in the delete list",
                |d| {
                    let mut v = d.volumes_to_delete[0].clone();
                    v.id = 77;
                    v.name = "kbv3-b-data".into();
                    d.volumes_to_delete.push(v);
                    d.volumes_to_create.retain(|c| c.hostname != "b");
                    d.totals = totals_of(d, 3, 2);
                },
                "volumes_to_delete: kbv3-b-data (77) is a planned target volume",
            ),
            (
                "a volume twice",
                |d| {
                    let v = d.volumes_to_delete[0].clone();
                    d.volumes_to_delete.push(v);
                    d.totals = totals_of(d, 3, 2);
                },
                "volume id 1 appears more than once",
            ),
            (
                "an unknown host",
                |d| {
                    d.volumes_to_create[0].hostname = "ghost".into();
                },
                "the diff names hosts that are not in the inventory: ghost",
            ),
            (
                "a host the diff forgot",
                |d| {
                    d.volumes_to_create.pop();
                    d.totals = totals_of(d, 2, 2);
                },
                "the diff has no entry for hosts of the inventory: b",
            ),
            (
                "half an attachment",
                |d| {
                    d.volumes_to_delete[0].server_id = None;
                },
                "volumes_to_delete: vol-a (1) must have both server_id and server_name",
            ),
            (
                "another strategy",
                |d| d.strategy = "yolo".into(),
                "strategy 'yolo' is unknown",
            ),
            (
                "an orphan the selector does not match",
                |d| d.volumes_to_delete[1].name = "team-scratch".into(),
                "volumes_to_delete: team-scratch (2) is unattached but the legacy selector (name vol-*) does not match it",
            ),
            (
                "a server of another fleet",
                |d| {
                    d.fleet_servers.insert("ghost".into(), 9);
                },
                "the diff names hosts that are not in the inventory: ghost",
            ),
        ];
        assert_eq!(
            validate(&valid(), &plan()),
            Ok(()),
            "the unedited diff is valid"
        );
        for (case, edit, want) in cases {
            let mut d = valid();
            edit(&mut d);
            let problems = validate(&d, &plan()).unwrap_err();
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{case}: {problems:?}"
            );
        }
    }
}
