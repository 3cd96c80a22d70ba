//! The API stage's input for the hosts of a play, from the fleet files and
//! the reviewed diff: PH3-02 passes host names (`ansible_play_batch`) and
//! the inventory's `kbv3_fleet`, not volumes computed in Jinja. Each fleet
//! host gets its planned volume and exactly its own legacy volumes, and the
//! orphans' pseudo-host the unattached ones, as the inventory attributes them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::params::{Deletion, DesiredVolume, VolumesParams};
use crate::fleet::diff::Diff;
use crate::fleet::inventory::ORPHAN_HOST;
use crate::fleet::paths;
use crate::fleet::plan::Plan;
use crate::fleet::reviewed::{self, ReviewedDiff};
use crate::hcloud::types::Labels;
use crate::reconcile::desired::Format;

/// What the fleet asks for the selected hosts.
#[derive(Debug, Default)]
pub struct Selection {
    pub volumes: Vec<DesiredVolume>,
    pub deletions: Vec<Deletion>,
    /// Selected hosts the fleet does not know (they get nothing).
    pub unknown: Vec<String>,
}

/// The volumes and deletions of `hosts` (pure). New volumes are formatted
/// as `formats` says for their host and carry `labels` plus their `role_v3`.
pub fn select(
    plan: &Plan,
    diff: &Diff,
    hosts: &[String],
    formats: &BTreeMap<String, Option<Format>>,
    labels: &Labels,
) -> Selection {
    let planned: BTreeMap<&str, _> = plan
        .volumes
        .iter()
        .map(|p| (p.hostname.as_str(), p))
        .collect();
    let moves: BTreeMap<&str, bool> = diff
        .volumes_to_fix
        .iter()
        .map(|f| (f.hostname.as_str(), f.move_volume))
        .collect();
    // The legacy volumes by server, grouped once rather than per host.
    let mut legacy_by_server: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for v in &diff.volumes_to_delete {
        if let Some(server) = v.server_name.as_deref() {
            legacy_by_server.entry(server).or_default().push(v.id);
        }
    }
    let mut out = Selection::default();
    for host in hosts {
        let legacy: Vec<i64> = if host == ORPHAN_HOST {
            diff.orphans().map(|v| v.id).collect()
        } else {
            let Some(p) = planned.get(host.as_str()) else {
                out.unknown.push(host.clone());
                continue;
            };
            let mut labels = labels.clone();
            labels.insert("role_v3".into(), p.role_v3.clone());
            out.volumes.push(DesiredVolume {
                host: Some(host.clone()),
                name: Some(p.volume_name.clone()),
                size: Some(p.size_gb),
                server: Some(host.clone()),
                move_volume: moves.get(host.as_str()).copied().unwrap_or(false),
                location: None,
                format: formats.get(host).copied().flatten(),
                automount: false,
                labels: Some(labels),
                delete_protection: None,
            });
            legacy_by_server
                .get(host.as_str())
                .cloned()
                .unwrap_or_default()
        };
        out.deletions.extend(legacy.into_iter().map(|id| Deletion {
            host: Some(host.clone()),
            id: Some(id),
            expect: None,
        }));
    }
    out
}

/// Fills `volumes`, `deletions`, `diff_file` and `state_dir` of options that
/// name `hosts` and `fleet`, from the files the inventory read (the diff:
/// `diff_file` when given). `warnings` gets the selected hosts the fleet
/// does not know. Returns the diff it read, which then guards the
/// deletions: one diff chooses and guards them, read once.
///
/// # Errors
/// The message for the user: fleet files or a diff that cannot be read, or hosts the fleet does not know.
pub fn expand(
    p: &mut VolumesParams,
    warnings: &mut Vec<String>,
) -> Result<Option<ReviewedDiff>, String> {
    let Some(hosts) = p.hosts.clone() else {
        return Ok(None);
    };
    let Some(fleet) = &p.fleet else {
        return Err("argument 'hosts': goes with fleet (the inventory's kbv3_fleet)".into());
    };
    if !p.volumes.is_empty() || !p.deletions.is_empty() {
        return Err(
            "give either hosts (with fleet) or volumes and deletions, not both: with hosts, the fleet files say what each host gets".into(),
        );
    }
    let paths = paths::from_vars(&fleet.env);
    let plan = crate::fleet::load_plan(&paths).map_err(|e| format!("{e:#}"))?;
    let diff_file = p.diff_file.as_ref().map_or(paths.diff, PathBuf::from);
    let reviewed = reviewed::load(&diff_file)?;
    crate::fleet::diff::validate(&reviewed.diff, &plan).map_err(|problems| {
        format!(
            "{}: the PH3-01 diff does not match the fleet files; nothing will act on it: {}. Run PH3-01 again and review it.",
            diff_file.display(),
            problems.join("; ")
        )
    })?;
    let labels = p.labels.clone().unwrap_or_default();
    let selection = select(&plan, &reviewed.diff, &hosts, &p.formats, &labels);
    if !selection.unknown.is_empty() {
        warnings.push(format!(
            "{} hosts of the play are not in the fleet file {} and get nothing: {}",
            selection.unknown.len(),
            paths.servers.display(),
            selection.unknown.join(", ")
        ));
    }
    p.volumes = selection.volumes;
    p.deletions = selection.deletions;
    p.diff_file = Some(diff_file.display().to_string());
    p.state_dir
        .get_or_insert_with(|| paths.state.display().to_string());
    Ok(Some(reviewed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::diff::{DiffTotals, LegacySelector, ListedVolume, ToFix};
    use crate::fleet::plan::{PlanTotals, PlannedVolume};

    fn planned(host: &str, size: u32) -> PlannedVolume {
        PlannedVolume {
            hostname: host.into(),
            role_v3: "app-crm".into(),
            private_ip: "10.0.0.1".into(),
            volume_name: format!("kbv3-{host}-data"),
            volume_class: "apps_misc".into(),
            size_gb: size,
            mountpoint: "/data/apps_misc".into(),
        }
    }

    fn legacy(id: i64, server: Option<&str>) -> ListedVolume {
        ListedVolume {
            id,
            name: format!("vol-{id}"),
            size_gb: 10,
            location: "nbg1".into(),
            server_id: server.map(|_| 1),
            server_name: server.map(str::to_string),
            labels: None,
            reason: "legacy".into(),
        }
    }

    fn fixture() -> (Plan, Diff) {
        let plan = Plan {
            naming: String::new(),
            volumes: vec![planned("crm-01", 20), planned("web-01", 50)],
            totals: PlanTotals {
                servers: 2,
                volumes: 2,
                size_gb: 70,
            },
        };
        let diff = Diff {
            strategy: String::new(),
            generated_at: String::new(),
            existing_source: String::new(),
            legacy_selector: LegacySelector::default(),
            fleet_servers: BTreeMap::new(),
            volumes_to_delete: vec![
                legacy(7, Some("crm-01")),
                legacy(8, Some("web-01")),
                legacy(9, None),
            ],
            volumes_to_create: vec![],
            volumes_to_fix: vec![ToFix {
                id: 3,
                hostname: "web-01".into(),
                volume_name: "kbv3-web-01-data".into(),
                size_gb: 50,
                planned_size_gb: 50,
                location: "nbg1".into(),
                server_name: Some("crm-01".into()),
                move_volume: true,
                fixes: vec![],
                reason: String::new(),
            }],
            volumes_ok: vec![],
            volumes_left_alone: vec![],
            missing_servers: vec![],
            totals: DiffTotals::default(),
        };
        (plan, diff)
    }

    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [i64], &'a [&'a str]);

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_selected_host_gets_its_volume_and_only_its_own_legacy_volumes() {
        let (plan, diff) = fixture();
        let formats = BTreeMap::from([("crm-01".to_string(), Some(Format::Xfs))]);
        let labels = Labels::from([("managed-by".to_string(), "kbv3".to_string())]);
        // (selected hosts, their volumes, their deletions, unknown hosts)
        let cases: [Case; 4] = [
            (&["crm-01"], &["kbv3-crm-01-data"], &[7], &[]),
            (
                &["web-01", "crm-01"],
                &["kbv3-web-01-data", "kbv3-crm-01-data"],
                &[8, 7],
                &[],
            ),
            (&[ORPHAN_HOST], &[], &[9], &[]),
            (
                &["ghost-01", "web-01"],
                &["kbv3-web-01-data"],
                &[8],
                &["ghost-01"],
            ),
        ];
        for (selected, volumes, deletions, unknown) in cases {
            let s = select(&plan, &diff, &hosts(selected), &formats, &labels);
            let names: Vec<&str> = s.volumes.iter().filter_map(|v| v.name.as_deref()).collect();
            let ids: Vec<i64> = s.deletions.iter().filter_map(|d| d.id).collect();
            assert_eq!(
                (names.as_slice(), ids.as_slice()),
                (volumes, deletions),
                "{selected:?}"
            );
            assert_eq!(s.unknown, hosts(unknown), "{selected:?}");
        }
    }

    #[test]
    fn a_volume_carries_its_size_move_format_and_labels() {
        let (plan, diff) = fixture();
        let formats = BTreeMap::from([("crm-01".to_string(), Some(Format::Xfs))]);
        let labels = Labels::from([("managed-by".to_string(), "kbv3".to_string())]);
        let s = select(
            &plan,
            &diff,
            &hosts(&["crm-01", "web-01"]),
            &formats,
            &labels,
        );
        let crm = &s.volumes[0];
        assert_eq!(
            (crm.size, crm.format, crm.move_volume),
            (Some(20), Some(Format::Xfs), false)
        );
        assert_eq!(crm.server.as_deref(), Some("crm-01"));
        let want = Labels::from([
            ("managed-by".to_string(), "kbv3".to_string()),
            ("role_v3".to_string(), "app-crm".to_string()),
        ]);
        assert_eq!(crm.labels.as_ref(), Some(&want));
        let web = &s.volumes[1];
        assert_eq!(
            (web.size, web.format, web.move_volume),
            (Some(50), None, true)
        );
    }
}
