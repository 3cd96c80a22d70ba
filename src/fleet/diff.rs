//! The PH3-01 diff (`volume_diff_v3.json`): plan + existing volumes →
//! volumes to delete, to create, and already right (pure).
//!
//! Strategy "destroy and recreate all" (the report's Option A): every existing
//! volume that is not already a correct target volume is deleted. A target
//! volume that exists with the planned size, attached to its server, is `ok`
//! and kept, so the diff stays right after a partial PH3-02.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::snapshot::{per_location, Snapshot, VolumeRef};

/// The only strategy: Option A of the PH3-01 report.
pub const STRATEGY: &str = "destroy_and_recreate_all";

/// An existing volume to delete, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDelete {
    #[serde(flatten)]
    pub volume: VolumeRef,
    pub reason: String,
}

/// A target volume to create, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToCreate {
    pub hostname: String,
    pub volume_name: String,
    pub size_gb: u32,
    pub mountpoint: String,
    /// The server's location, when the project has the server.
    pub location: Option<String>,
    pub server_id: Option<i64>,
    pub reason: String,
}

/// A target volume that is already right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlreadyOk {
    pub id: i64,
    pub hostname: String,
    pub volume_name: String,
    pub size_gb: u32,
    pub location: String,
    pub reason: String,
}

/// Counts of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffTotals {
    pub existing: usize,
    pub target: usize,
    pub to_delete: usize,
    pub to_delete_gb: u64,
    pub to_create: usize,
    pub to_create_gb: u64,
    pub ok: usize,
    pub to_create_by_location: BTreeMap<String, usize>,
}

/// The diff file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub strategy: String,
    pub generated_at: String,
    /// Where the existing volumes came from (an endpoint or a snapshot file).
    pub existing_source: String,
    pub volumes_to_delete: Vec<ToDelete>,
    pub volumes_to_create: Vec<ToCreate>,
    pub volumes_ok: Vec<AlreadyOk>,
    /// Hosts of the plan that the project has no server for.
    pub missing_servers: Vec<String>,
    pub totals: DiffTotals,
}

/// Compares the plan with the existing volumes.
pub fn compute(
    plan: &Plan,
    existing: &Snapshot,
    generated_at: String,
    existing_source: String,
) -> Diff {
    let servers: BTreeMap<&str, _> = existing
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let targets: BTreeMap<&str, _> = plan
        .volumes
        .iter()
        .map(|p| (p.volume_name.as_str(), p))
        .collect();
    let mut to_delete = Vec::new();
    let mut ok = Vec::new();
    for v in existing.volumes.iter().map(|e| &e.volume) {
        let reason = match targets.get(v.name.as_str()) {
            None if v.name.starts_with("kbv3-") => "a kbv3 volume that the plan does not list (orphan)".to_string(),
            None => "does not follow the v3 convention kbv3-<hostname>-data (Option A: destroy & recreate)".to_string(),
            Some(p) if v.size_gb != p.size_gb => {
                format!("target name but {} GB where the plan says {} GB", v.size_gb, p.size_gb)
            }
            Some(p) if v.server_name.as_deref() != Some(p.hostname.as_str()) => match &v.server_name {
                Some(other) => format!("target name but attached to {other}, not {}", p.hostname),
                None => format!("target name but not attached to {}", p.hostname),
            },
            Some(p) => {
                ok.push(AlreadyOk {
                    id: v.id,
                    hostname: p.hostname.clone(),
                    volume_name: v.name.clone(),
                    size_gb: v.size_gb,
                    location: v.location.clone(),
                    reason: "exists with the planned size, attached to its server".into(),
                });
                continue;
            }
        };
        to_delete.push(ToDelete {
            volume: v.clone(),
            reason,
        });
    }
    let mut to_create = Vec::new();
    let mut missing_servers = Vec::new();
    for p in &plan.volumes {
        if ok.iter().any(|o| o.volume_name == p.volume_name) {
            continue;
        }
        let server = servers.get(p.hostname.as_str());
        if server.is_none() {
            missing_servers.push(p.hostname.clone());
        }
        let replaced = to_delete.iter().any(|d| d.volume.name == p.volume_name);
        to_create.push(ToCreate {
            hostname: p.hostname.clone(),
            volume_name: p.volume_name.clone(),
            size_gb: p.size_gb,
            mountpoint: p.mountpoint.clone(),
            location: server.map(|s| s.location.clone()),
            server_id: server.map(|s| s.id),
            reason: if replaced {
                "replaces an existing volume of that name that is not right (see volumes_to_delete)"
                    .into()
            } else {
                "no volume of that name exists".into()
            },
        });
    }
    let mut by_location = BTreeMap::new();
    for c in &to_create {
        *by_location
            .entry(c.location.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let totals = DiffTotals {
        existing: existing.volumes.len(),
        target: plan.volumes.len(),
        to_delete: to_delete.len(),
        to_delete_gb: to_delete.iter().map(|d| u64::from(d.volume.size_gb)).sum(),
        to_create: to_create.len(),
        to_create_gb: to_create.iter().map(|c| u64::from(c.size_gb)).sum(),
        ok: ok.len(),
        to_create_by_location: by_location,
    };
    Diff {
        strategy: STRATEGY.into(),
        generated_at,
        existing_source,
        volumes_to_delete: to_delete,
        volumes_to_create: to_create,
        volumes_ok: ok,
        missing_servers,
        totals,
    }
}

impl Diff {
    /// A short human summary, like the report's executive summary.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut out = format!(
            "PH3-01 diff (strategy {}): {} existing, {} target\n  to delete: {:>3} ({} GB)\n  to create: {:>3} ({} GB; {})\n  ok:        {:>3}\n",
            self.strategy,
            t.existing,
            t.target,
            t.to_delete,
            t.to_delete_gb,
            t.to_create,
            t.to_create_gb,
            per_location(&t.to_create_by_location),
            t.ok
        );
        if !self.missing_servers.is_empty() {
            out.push_str(&format!(
                "  WARNING: the project has no server named {}; their volumes cannot be created\n",
                self.missing_servers.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::plan::{PlanTotals, PlannedVolume};
    use crate::fleet::snapshot::{ExistingVolume, ProjectServer, SnapshotTotals, VolumeRef};

    fn plan() -> Plan {
        let pv = |h: &str, size| PlannedVolume {
            hostname: h.into(),
            role_v3: "r".into(),
            private_ip: "10.0.0.1".into(),
            volume_name: format!("kbv3-{h}-data"),
            volume_class: "r".into(),
            size_gb: size,
            mountpoint: "/data/r".into(),
        };
        Plan {
            naming: String::new(),
            volumes: vec![pv("a", 20), pv("b", 50)],
            totals: PlanTotals {
                servers: 2,
                volumes: 2,
                size_gb: 70,
            },
        }
    }

    fn vol(id: i64, name: &str, size: u32, server: Option<&str>) -> ExistingVolume {
        ExistingVolume {
            volume: VolumeRef {
                id,
                name: name.into(),
                size_gb: size,
                location: "nbg1".into(),
                server_id: server.map(|_| 1),
                server_name: server.map(String::from),
            },
            status: "available".into(),
            labels: Default::default(),
            delete_protection: false,
            linux_device: String::new(),
            format: None,
            created: String::new(),
        }
    }

    fn snapshot(volumes: Vec<ExistingVolume>) -> Snapshot {
        let servers = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, n)| ProjectServer {
                id: i as i64 + 1,
                name: n.to_string(),
                location: "nbg1".into(),
            })
            .collect();
        Snapshot {
            generated_at: String::new(),
            endpoint: String::new(),
            volumes,
            servers,
            totals: SnapshotTotals {
                volumes: 0,
                attached: 0,
                detached: 0,
                size_gb: 0,
                by_location: Default::default(),
            },
        }
    }

    /// (case, existing volumes, to delete, to create, ok)
    type Case = (
        &'static str,
        Vec<ExistingVolume>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
    );

    #[test]
    fn diff_table() {
        let cases: Vec<Case> = vec![
            (
                "fresh project",
                vec![
                    vol(1, "vol-a", 10, Some("a")),
                    vol(2, "vol-b", 10, Some("b")),
                ],
                vec!["vol-a", "vol-b"],
                vec!["a", "b"],
                vec![],
            ),
            (
                "partial PH3-02",
                vec![
                    vol(2, "vol-b", 10, Some("b")),
                    vol(3, "kbv3-a-data", 20, Some("a")),
                ],
                vec!["vol-b"],
                vec!["b"],
                vec!["a"],
            ),
            (
                "everything done",
                vec![
                    vol(3, "kbv3-a-data", 20, Some("a")),
                    vol(4, "kbv3-b-data", 50, Some("b")),
                ],
                vec![],
                vec![],
                vec!["a", "b"],
            ),
            (
                "right name, wrong size",
                vec![vol(3, "kbv3-a-data", 10, Some("a"))],
                vec!["kbv3-a-data"],
                vec!["a", "b"],
                vec![],
            ),
            (
                "right name, wrong server",
                vec![vol(3, "kbv3-a-data", 20, Some("b"))],
                vec!["kbv3-a-data"],
                vec!["a", "b"],
                vec![],
            ),
            (
                "right name, detached",
                vec![vol(3, "kbv3-a-data", 20, None)],
                vec!["kbv3-a-data"],
                vec!["a", "b"],
                vec![],
            ),
            (
                "orphan",
                vec![
                    vol(9, "kbv3-gone-data", 20, None),
                    vol(8, "scratch", 10, None),
                ],
                vec!["kbv3-gone-data", "scratch"],
                vec!["a", "b"],
                vec![],
            ),
        ];
        for (case, existing, del, create, ok) in cases {
            let d = compute(&plan(), &snapshot(existing), "t".into(), "test".into());
            let names = |v: Vec<String>| v;
            assert_eq!(
                names(
                    d.volumes_to_delete
                        .iter()
                        .map(|v| v.volume.name.clone())
                        .collect()
                ),
                del,
                "{case}: delete"
            );
            assert_eq!(
                d.volumes_to_create
                    .iter()
                    .map(|v| v.hostname.as_str())
                    .collect::<Vec<_>>(),
                create,
                "{case}: create"
            );
            assert_eq!(
                d.volumes_ok
                    .iter()
                    .map(|v| v.hostname.as_str())
                    .collect::<Vec<_>>(),
                ok,
                "{case}: ok"
            );
            assert_eq!(
                d.totals.to_delete + d.totals.ok,
                d.totals.existing,
                "{case}: every existing volume is accounted for"
            );
        }
    }

    #[test]
    fn reasons_say_why() {
        let d = compute(
            &plan(),
            &snapshot(vec![
                vol(3, "kbv3-a-data", 10, Some("a")),
                vol(1, "vol-x", 10, Some("b")),
            ]),
            "t".into(),
            "s".into(),
        );
        assert_eq!(
            d.volumes_to_delete[0].reason,
            "target name but 10 GB where the plan says 20 GB"
        );
        assert!(d.volumes_to_delete[1]
            .reason
            .starts_with("does not follow the v3 convention"));
        assert_eq!(
            d.volumes_to_create[0].reason,
            "replaces an existing volume of that name that is not right (see volumes_to_delete)"
        );
        assert_eq!(d.volumes_to_create[0].location.as_deref(), Some("nbg1"));
    }
}
