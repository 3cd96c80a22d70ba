//! The PH3-01 diff (`volume_diff_v3.json`): plan + existing volumes →
//! volumes to delete, to create, to fix, already right, and left alone (pure).
//!
//! Strategy "destroy and recreate all" (the report's Option A), bounded by
//! two rules that keep data safe:
//! - a volume that bears a target name (`kbv3-<host>-data` of a fleet host)
//!   is never deleted: when it is not right yet (unattached, on another fleet
//!   server, too small) it is listed *to fix*;
//! - a volume attached to a server outside the fleet is *left alone*.
//!
//! Every volume attached to a fleet server belongs to that host and is
//! deleted, whatever its name. An unattached volume is deleted (an orphan)
//! only when the legacy selector ([`LegacySelector`]: by default names
//! `vol-*`) matches it; any other is left alone, so a project shared with
//! other teams keeps their scratch volumes. The diff records the selector and
//! the server id of every fleet host, so it can only be executed against the
//! servers it was made for. It is validated as a whole ([`validate`]) before
//! anything acts on it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use super::plan::{Plan, PlannedVolume};
use super::snapshot::{per_location, ProjectServer, Snapshot, VolumeRef};
use crate::hcloud::selector::Selector;
use crate::hcloud::types::Labels;

/// The only strategy: Option A of the PH3-01 report.
pub const STRATEGY: &str = "destroy_and_recreate_all";

/// An existing volume listed to delete or to leave alone, and why.
/// `server_id`/`server_name` are both present in the file: `null` says
/// "unattached" explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedVolume {
    pub id: i64,
    pub name: String,
    pub size_gb: u32,
    pub location: String,
    #[serde(deserialize_with = "nullable")]
    pub server_id: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub server_name: Option<String>,
    /// Its labels when reviewed (the legacy selector may have chosen it by
    /// them); a deletion is refused when they changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    pub reason: String,
}

/// A target volume to create, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToCreate {
    pub hostname: String,
    pub volume_name: String,
    pub size_gb: u32,
    pub mountpoint: String,
    /// The server's location, when the project has the server.
    #[serde(deserialize_with = "nullable")]
    pub location: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub server_id: Option<i64>,
    pub reason: String,
}

/// A volume that already bears a host's target name but is not right yet:
/// PH3-02 attaches, moves or grows it, and never deletes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToFix {
    pub id: i64,
    pub hostname: String,
    pub volume_name: String,
    pub size_gb: u32,
    pub planned_size_gb: u32,
    pub location: String,
    /// The fleet server it is attached to now (`null`: unattached).
    #[serde(deserialize_with = "nullable")]
    pub server_name: Option<String>,
    /// True when it must be detached from another fleet server first.
    #[serde(rename = "move")]
    pub move_volume: bool,
    /// What PH3-02 does, in words (`attach to crm-01`, `grow to 20 GB`).
    pub fixes: Vec<String>,
    pub reason: String,
}

/// A target volume that is already right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlreadyOk {
    pub id: i64,
    pub hostname: String,
    pub volume_name: String,
    pub size_gb: u32,
    pub location: String,
    pub reason: String,
}

/// Counts of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffTotals {
    pub existing: usize,
    pub target: usize,
    pub to_delete: usize,
    pub to_delete_gb: u64,
    pub to_create: usize,
    pub to_create_gb: u64,
    pub to_fix: usize,
    pub ok: usize,
    pub left_alone: usize,
    pub left_alone_gb: u64,
    pub to_create_by_location: BTreeMap<String, usize>,
}

/// Which unattached volumes are legacy volumes (orphans PH3-02 deletes): a
/// name matching one of `names` (`*` and `?` wildcards), or labels matching
/// `label_selector` (Hetzner's syntax). Any other unattached volume is left
/// alone. Volumes attached to fleet servers are deleted whatever their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySelector {
    pub names: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub label_selector: Option<String>,
}

impl Default for LegacySelector {
    /// The legacy convention the PH3-01 report describes: `vol-*`.
    fn default() -> Self {
        LegacySelector {
            names: vec!["vol-*".into()],
            label_selector: None,
        }
    }
}

impl LegacySelector {
    /// Checks the label selector's syntax; the error says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let Some(text) = &self.label_selector {
            Selector::parse(text).map_err(|e| format!("legacy label selector '{text}': {e}"))?;
        }
        if self.names.iter().any(String::is_empty) {
            return Err("a legacy name pattern is empty".into());
        }
        Ok(())
    }

    /// True when a volume with this name and these labels is a legacy volume.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.names
            .iter()
            .any(|p| glob(p.as_bytes(), name.as_bytes()))
            || self
                .label_selector
                .as_deref()
                .and_then(|t| Selector::parse(t).ok())
                .is_some_and(|s| s.matches(labels))
    }

    /// The selector in words, for reasons and summaries.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.names.iter().map(|n| format!("name {n}")).collect();
        if let Some(l) = &self.label_selector {
            parts.push(format!("labels {l}"));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(" or ")
        }
    }
}

/// Matches `text` against a pattern where `*` is any run and `?` any one byte.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, _) => text.is_empty(),
        (Some((b'*', rest)), _) => {
            glob(rest, text) || text.split_first().is_some_and(|(_, t)| glob(pattern, t))
        }
        (Some((b'?', rest)), Some((_, t))) => glob(rest, t),
        (Some((p, rest)), Some((c, t))) if p == c => glob(rest, t),
        _ => false,
    }
}

/// The diff file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diff {
    pub strategy: String,
    pub generated_at: String,
    /// Where the existing volumes came from (an endpoint or a snapshot file).
    pub existing_source: String,
    /// Which unattached volumes were taken for legacy volumes.
    pub legacy_selector: LegacySelector,
    /// The server id of each fleet host the project has: PH3-02 refuses the
    /// diff when the API shows other servers under these names.
    pub fleet_servers: BTreeMap<String, i64>,
    pub volumes_to_delete: Vec<ListedVolume>,
    pub volumes_to_create: Vec<ToCreate>,
    pub volumes_to_fix: Vec<ToFix>,
    pub volumes_ok: Vec<AlreadyOk>,
    pub volumes_left_alone: Vec<ListedVolume>,
    /// Hosts of the plan that the project has no server for.
    pub missing_servers: Vec<String>,
    pub totals: DiffTotals,
}

/// A field that must be present but may be `null`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

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
fn totals_of(d: &Diff, existing: usize, target: usize) -> DiffTotals {
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

impl Diff {
    /// The legacy volumes to delete that are attached to no server (orphans).
    pub fn orphans(&self) -> impl Iterator<Item = &ListedVolume> {
        self.volumes_to_delete
            .iter()
            .filter(|v| v.server_name.is_none())
    }

    /// A short human summary, like the report's executive summary.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut out = format!(
            "PH3-01 diff (strategy {}): {} existing, {} target\n  to delete:  {:>3} ({} GB)\n  to create:  {:>3} ({} GB; {})\n  to fix:     {:>3}\n  ok:         {:>3}\n  left alone: {:>3} ({} GB)\n",
            self.strategy,
            t.existing,
            t.target,
            t.to_delete,
            t.to_delete_gb,
            t.to_create,
            t.to_create_gb,
            per_location(&t.to_create_by_location),
            t.to_fix,
            t.ok,
            t.left_alone,
            t.left_alone_gb,
        );
        for f in &self.volumes_to_fix {
            out.push_str(&format!(
                "    fix {} ({}): {}\n",
                f.volume_name,
                f.id,
                f.fixes.join(", ")
            ));
        }
        out.push_str(&format!(
            "  orphans are unattached volumes matching {}\n",
            self.legacy_selector.describe()
        ));
        for v in &self.volumes_left_alone {
            out.push_str(&format!(
                "    left alone {} ({}): {}\n",
                v.name, v.id, v.reason
            ));
        }
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

    fn vol_in(
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

    fn vol(id: i64, name: &str, size: u32, server: Option<&str>) -> ExistingVolume {
        vol_in(id, name, size, server, "nbg1")
    }

    fn snapshot(volumes: Vec<ExistingVolume>) -> Snapshot {
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

    fn valid() -> Diff {
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

    /// (case, selector, name, labels, legacy?)
    #[test]
    fn the_legacy_selector_by_name_or_labels() {
        let by_name = LegacySelector::default();
        let by_labels = LegacySelector {
            names: vec![],
            label_selector: Some("team=legacy,!keep".into()),
        };
        let both = LegacySelector {
            names: vec!["old-?".into(), "*-tmp".into()],
            label_selector: Some("team=legacy".into()),
        };
        let legacy: Labels = [("team".to_string(), "legacy".to_string())].into();
        let none = Labels::default();
        let cases = [
            ("vol-* by name", &by_name, "vol-redis-01", &none, true),
            ("vol-* needs the prefix", &by_name, "my-vol-1", &none, false),
            ("vol-* ignores labels", &by_name, "scratch", &legacy, false),
            ("labels only", &by_labels, "vol-redis-01", &none, false),
            ("labels match", &by_labels, "scratch", &legacy, true),
            ("? is one character", &both, "old-1", &none, true),
            ("? is not two", &both, "old-12", &none, false),
            ("* in front", &both, "build-tmp", &none, true),
            ("either matches", &both, "scratch", &legacy, true),
        ];
        for (case, sel, name, labels, want) in cases {
            assert_eq!(sel.matches(name, labels), want, "{case}");
        }
        let bad = LegacySelector {
            names: vec![],
            label_selector: Some("a b".into()),
        };
        assert!(bad
            .check()
            .unwrap_err()
            .contains("legacy label selector 'a b'"));
    }

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

    #[test]
    fn the_file_must_say_unattached_explicitly() {
        let mut doc = serde_json::to_value(valid()).unwrap();
        assert!(serde_json::from_value::<Diff>(doc.clone()).is_ok());
        doc["volumes_to_delete"][1]
            .as_object_mut()
            .unwrap()
            .remove("server_name");
        let err = serde_json::from_value::<Diff>(doc.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `server_name`"), "{err}");
        doc["volumes_to_delete"][1]["server_name"] = serde_json::Value::Null;
        doc["volumes_to_delete"][1]["force"] = true.into();
        let err = serde_json::from_value::<Diff>(doc).unwrap_err().to_string();
        assert!(err.contains("unknown field `force`"), "{err}");
    }
}
