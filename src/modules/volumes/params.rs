//! The options of `kbv3_volumes`, and the entries they describe: one
//! [`Entry`] per desired volume and per guarded deletion, each carrying the
//! `kbv3_volume` options ([`Params`]) the shared planner takes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ansible::convert::{bounded, labels, opt_id, opt_string};
use crate::hcloud::types::Labels;
use crate::modules::options::{connection_options, volume_options};
use crate::reconcile::desired::{Desired, Expect, Format, State};

volume_options! {
    /// A volume the fleet must have: created, grown, attached as asked.
    #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DesiredVolume {
        /// The inventory host whose result this is; default: `server`.
        #[serde(default, deserialize_with = "opt_string")]
        pub host: Option<String>,
    }
}

/// A volume to detach and delete, only while it is still what was reviewed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    /// The inventory host whose result this is (the orphans' pseudo-host for unattached volumes).
    #[serde(default, deserialize_with = "opt_string")]
    pub host: Option<String>,
    /// The volume's id.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<i64>,
    /// What the reviewed plan says the volume is; with `diff_file`, taken from the diff.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// The inventory's `kbv3_fleet`: where the fleet files are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct FleetVars {
    /// The `KBV3_*` variables that point at the fleet files, the state
    /// directory and the diff.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

connection_options! { options! {
/// The options of `kbv3_volumes`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kbv3_volumes options")]
pub struct VolumesParams {
    /// The volumes to converge (each like a `kbv3_volume` task with state present).
    #[serde(default)]
    pub volumes: Vec<DesiredVolume>,
    /// The volumes to delete, each guarded by its complete `expect` (or by `diff_file`).
    #[serde(default)]
    pub deletions: Vec<Deletion>,
    /// The reviewed PH3-01 diff that must list every deletion; its entries are the guards.
    #[serde(default, deserialize_with = "opt_string")]
    pub diff_file: Option<String>,
    /// With `diff_file`: the diff's confirmation code; required to delete unless in check mode.
    #[serde(default, deserialize_with = "opt_string")]
    pub confirm: Option<String>,
    /// The state directory: a real run's journal, host locks and report go
    /// here (default: the folder of `diff_file`; without either, none).
    #[serde(default, deserialize_with = "opt_string")]
    pub state_dir: Option<String>,
    /// Requests in flight at once (1 to 64).
    #[serde(
        default = "default_concurrency",
        deserialize_with = "bounded::<_, 1, 64>"
    )]
    pub concurrency: u64,
    /// Seconds the whole task may take (1 to 86400), every volume included.
    #[serde(
        default = "default_wait_timeout",
        deserialize_with = "bounded::<_, 1, 86_400>"
    )]
    pub wait_timeout: u64,
    /// Seconds one request may take, answer included (1 to 3600).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "bounded::<_, 1, 3_600>"
    )]
    pub request_timeout: u64,
    /// The hosts of the play (`ansible_play_batch`): with `fleet`, their
    /// volumes and deletions come from the fleet files and the reviewed diff,
    /// instead of `volumes` and `deletions`.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// With `hosts`: the inventory's `kbv3_fleet` (where the fleet files are).
    #[serde(default)]
    pub fleet: Option<FleetVars>,
    /// With `hosts`: the filesystem Hetzner makes on each host's new volume
    /// (host → ext4 or xfs; a host not named gets none).
    #[serde(default)]
    pub formats: BTreeMap<String, Option<Format>>,
    /// With `hosts`: the labels of every volume (`role_v3` is added).
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<Labels>,
}
} }

fn default_concurrency() -> u64 {
    16
}
fn default_wait_timeout() -> u64 {
    3600
}
fn default_request_timeout() -> u64 {
    60
}

/// What an entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Volume,
    Deletion,
}

/// One volume of the run: the host it reports to and what it should be.
#[derive(Debug, Clone)]
pub struct Entry {
    pub host: String,
    pub kind: Kind,
    pub desired: Desired,
}

/// Checks the options and turns them into entries; `warnings` collects
/// what `kbv3_volume` would warn about.
///
/// # Errors
/// The message for the user, naming the entry.
pub fn entries(p: &VolumesParams, warnings: &mut Vec<String>) -> Result<Vec<Entry>, String> {
    if p.confirm.is_some() && p.diff_file.is_none() {
        return Err("argument 'confirm': goes with diff_file (the diff it confirms)".into());
    }
    let mut out = Vec::new();
    // Deletions first: the order the steps run in, and the order results list them.
    for (i, d) in p.deletions.iter().enumerate() {
        let where_ = format!("deletions[{i}]");
        let Some(id) = d.id else {
            return Err(format!("{where_}: id is required"));
        };
        if d.expect.is_none() && p.diff_file.is_none() {
            return Err(format!(
                "{where_} (volume {id}): give expect (what the reviewed plan says the volume is) or diff_file; a deletion without a guard is refused"
            ));
        }
        let desired = Desired {
            id: Some(id),
            state: State::Absent,
            expect: d.expect.clone(),
            ..Desired::default()
        };
        let host = d.host.clone().unwrap_or_default();
        out.push(checked(desired, host, Kind::Deletion, &where_, warnings)?);
    }
    for (i, d) in p.volumes.iter().enumerate() {
        let host = d.host.clone().or_else(|| d.server.clone());
        let where_ = format!("volumes[{i}]");
        let Some(name) = &d.name else {
            return Err(format!("{where_}: name is required"));
        };
        let Some(host) = host else {
            return Err(format!("{where_} ({name}): give host or server"));
        };
        let desired = d.desired(None, State::Present, None);
        out.push(checked(desired, host, Kind::Volume, &where_, warnings)?);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out
        .iter()
        .find(|e| !seen.insert((e.kind, e.desired.name.clone(), e.desired.id)))
    {
        return Err(format!(
            "volume {} is listed twice; give each volume once",
            dup.desired.label()
        ));
    }
    Ok(out)
}

/// Checks one entry with the rules of `kbv3_volume`.
fn checked(
    desired: Desired,
    host: String,
    kind: Kind,
    where_: &str,
    warnings: &mut Vec<String>,
) -> Result<Entry, String> {
    desired
        .check(warnings)
        .map_err(|e| format!("{where_} ({host}): {e}"))?;
    Ok(Entry {
        host,
        kind,
        desired,
    })
}
