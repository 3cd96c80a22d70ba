//! Fixtures shared by the diff's unit tests: a two-host plan, volumes, a snapshot, a valid diff.

use super::{compute, Diff, LegacySelector};
use crate::fleet::plan::{Plan, PlanTotals, PlannedVolume};
use crate::fleet::snapshot::{ExistingVolume, ProjectServer, Snapshot, SnapshotTotals, VolumeRef};

pub(super) fn plan() -> Plan {
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

pub(super) fn vol_in(
    id: i64,
    name: &str,
    size: u32,
    server: Option<&str>,
    location: &str,
) -> ExistingVolume {
    ExistingVolume {
        volume: VolumeRef {
            id,
            name: name.into(),
            size_gb: size,
            location: location.into(),
            server_id: server.map(|s| s.len() as i64),
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

pub(super) fn vol(id: i64, name: &str, size: u32, server: Option<&str>) -> ExistingVolume {
    vol_in(id, name, size, server, "nbg1")
}

pub(super) fn snapshot(volumes: Vec<ExistingVolume>) -> Snapshot {
    let servers = ["a", "b", "outsider"]
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

pub(super) fn valid() -> Diff {
    compute(
        &plan(),
        &snapshot(vec![
            vol(1, "vol-a", 10, Some("a")),
            vol(2, "vol-scratch", 10, None),
        ]),
        &LegacySelector::default(),
        "t".into(),
        "s".into(),
    )
}
