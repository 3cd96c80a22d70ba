//! The snapshot of existing volumes (`existing_volumes_hetzner.json`), read
//! from the API: every volume, and the servers' names and locations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hcloud::client::VolumeFilter;
use crate::hcloud::types::Labels;
use crate::hcloud::{Client, Error};

/// What names an existing volume and where it is; the snapshot and the diff
/// both carry it (flattened into their JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRef {
    pub id: i64,
    pub name: String,
    pub size_gb: u32,
    pub location: String,
    pub server_id: Option<i64>,
    pub server_name: Option<String>,
}

/// One existing volume, flattened for people and for the diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingVolume {
    #[serde(flatten)]
    pub volume: VolumeRef,
    pub status: String,
    pub labels: Labels,
    pub delete_protection: bool,
    pub linux_device: String,
    pub format: Option<String>,
    pub created: String,
}

/// A server of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectServer {
    pub id: i64,
    pub name: String,
    pub location: String,
}

/// Counts of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTotals {
    pub volumes: usize,
    pub attached: usize,
    pub detached: usize,
    pub size_gb: u64,
    pub by_location: BTreeMap<String, usize>,
}

/// The snapshot file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub generated_at: String,
    pub endpoint: String,
    pub volumes: Vec<ExistingVolume>,
    pub servers: Vec<ProjectServer>,
    pub totals: SnapshotTotals,
}

/// Reads every volume and server: one request per 50 of each.
pub fn take(client: &Client, now: String) -> Result<Snapshot, Error> {
    let servers: Vec<ProjectServer> = client
        .list_servers(None)?
        .into_iter()
        .map(|s| ProjectServer {
            id: s.id,
            name: s.name,
            location: s.location.name,
        })
        .collect();
    let names: BTreeMap<i64, &str> = servers.iter().map(|s| (s.id, s.name.as_str())).collect();
    let volumes: Vec<ExistingVolume> = client
        .list_volumes(&VolumeFilter::default())?
        .into_iter()
        .map(|v| ExistingVolume {
            volume: VolumeRef {
                id: v.id,
                server_name: v
                    .server
                    .and_then(|id| names.get(&id).map(|n| n.to_string())),
                name: v.name,
                size_gb: v.size,
                location: v.location.name,
                server_id: v.server,
            },
            status: v.status,
            labels: v.labels,
            delete_protection: v.protection.delete,
            linux_device: v.linux_device,
            format: v.format,
            created: v.created,
        })
        .collect();
    Ok(Snapshot {
        generated_at: now,
        endpoint: client.config().endpoint.clone(),
        totals: totals(&volumes),
        volumes,
        servers,
    })
}

fn totals(volumes: &[ExistingVolume]) -> SnapshotTotals {
    let mut by_location = BTreeMap::new();
    for v in volumes {
        *by_location.entry(v.volume.location.clone()).or_default() += 1;
    }
    let attached = volumes
        .iter()
        .filter(|v| v.volume.server_id.is_some())
        .count();
    SnapshotTotals {
        volumes: volumes.len(),
        attached,
        detached: volumes.len() - attached,
        size_gb: volumes.iter().map(|v| u64::from(v.volume.size_gb)).sum(),
        by_location,
    }
}

/// `hel1 4, nbg1 36`, or `none`.
pub fn per_location(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = counts.iter().map(|(l, n)| format!("{l} {n}")).collect();
    parts.join(", ")
}

impl Snapshot {
    /// A short human summary.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        format!(
            "Existing volumes: {} ({} GB): {} attached, {} detached; by location: {}\n",
            t.volumes,
            t.size_gb,
            t.attached,
            t.detached,
            per_location(&t.by_location)
        )
    }
}
