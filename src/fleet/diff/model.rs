//! The diff file's data types, as serialized, and its summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::selector::LegacySelector;
use crate::fleet::snapshot::per_location;
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
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
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
    use crate::fleet::diff::fixtures::valid;

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
