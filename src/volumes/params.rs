//! The options of `kbv3_volumes`, and the entries they describe: one
//! [`Entry`] per desired volume and per guarded deletion, each carrying the
//! `kbv3_volume` options ([`Params`]) the shared planner takes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hcloud::types::Labels;
use crate::module::params::{
    boolean, check, format, int, labels, opt_bool, opt_int, opt_string, Expect, Format, Params,
    State,
};

/// A volume the fleet must have: created, grown, attached as asked.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    /// The inventory host whose result this is; default: `server`.
    #[serde(default, deserialize_with = "opt_string")]
    pub host: Option<String>,
    /// The volume's name.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Size in GB: required to create; grows an existing volume; never shrinks.
    #[serde(default, deserialize_with = "opt_int")]
    pub size: Option<i64>,
    /// The server (name or id) the volume must be attached to.
    #[serde(default, deserialize_with = "opt_string")]
    pub server: Option<String>,
    /// Detach from another server and attach to `server` (otherwise that fails).
    #[serde(default, rename = "move", deserialize_with = "boolean")]
    pub move_volume: bool,
    /// Location for a new volume without a server; defaults to the server's.
    #[serde(default, deserialize_with = "opt_string")]
    pub location: Option<String>,
    /// Filesystem Hetzner formats a new volume with.
    #[serde(default, deserialize_with = "format")]
    pub format: Option<Format>,
    /// Let the server mount the volume at /mnt/HC_Volume_<id>.
    #[serde(default, deserialize_with = "boolean")]
    pub automount: bool,
    /// When given, the volume's labels become exactly these.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<Labels>,
    /// Delete protection; omitted: untouched.
    #[serde(default, deserialize_with = "opt_bool")]
    pub delete_protection: Option<bool>,
}

/// A volume to detach and delete, only while it is still what was reviewed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    /// The inventory host whose result this is (the orphans' pseudo-host for unattached volumes).
    #[serde(default, deserialize_with = "opt_string")]
    pub host: Option<String>,
    /// The volume's id.
    #[serde(default, deserialize_with = "opt_int")]
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

/// The options of `kbv3_volumes`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kbv3_volumes options")]
pub struct VolumesParams {
    /// The volumes to converge (each like a `kbv3_volume` task with state present).
    #[serde(default)]
    pub volumes: Vec<Desired>,
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
    #[serde(default = "default_concurrency", deserialize_with = "int")]
    pub concurrency: i64,
    /// Seconds the whole task may take (1 to 86400), every volume included.
    #[serde(default = "default_wait_timeout", deserialize_with = "int")]
    pub wait_timeout: i64,
    /// Seconds one request may take, answer included (1 to 3600).
    #[serde(default = "default_request_timeout", deserialize_with = "int")]
    pub request_timeout: i64,
    /// Allow http:// to a host other than this machine.
    #[serde(default, deserialize_with = "boolean")]
    pub allow_insecure_http: bool,
    /// API token; default the HCLOUD_TOKEN environment variable. Never printed.
    #[serde(default, deserialize_with = "opt_string")]
    pub api_token: Option<String>,
    /// API endpoint; default HCLOUD_ENDPOINT, else https://api.hetzner.cloud/v1.
    #[serde(default, deserialize_with = "opt_string")]
    pub api_endpoint: Option<String>,
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

fn default_concurrency() -> i64 {
    16
}
fn default_wait_timeout() -> i64 {
    3600
}
fn default_request_timeout() -> i64 {
    60
}

/// What an entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Volume,
    Deletion,
}

/// One volume of the run: the host it reports to and its options.
#[derive(Debug, Clone)]
pub struct Entry {
    pub host: String,
    pub kind: Kind,
    pub params: Params,
}

impl Entry {
    /// The volume's name, or its id.
    pub fn label(&self) -> String {
        self.params
            .name
            .clone()
            .unwrap_or_else(|| self.params.id.unwrap_or_default().to_string())
    }
}

/// Checks the options and turns them into entries; `warnings` collects
/// what `kbv3_volume` would warn about.
pub fn entries(p: &VolumesParams, warnings: &mut Vec<String>) -> Result<Vec<Entry>, String> {
    for (name, value, range) in [
        ("concurrency", p.concurrency, 1..=64),
        ("wait_timeout", p.wait_timeout, 1..=86_400),
        ("request_timeout", p.request_timeout, 1..=3_600),
    ] {
        if !range.contains(&value) {
            return Err(format!(
                "argument '{name}': must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ));
        }
    }
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
        let params = Params {
            id: Some(id),
            expect: d.expect.clone(),
            ..item_defaults(p, State::Absent)
        };
        let host = d.host.clone().unwrap_or_default();
        out.push(checked(params, host, Kind::Deletion, &where_, warnings)?);
    }
    for (i, d) in p.volumes.iter().enumerate() {
        let host = d.host.clone().or_else(|| d.server.clone());
        let where_ = format!("volumes[{i}]");
        let Some(name) = d.name.clone() else {
            return Err(format!("{where_}: name is required"));
        };
        let Some(host) = host else {
            return Err(format!("{where_} ({name}): give host or server"));
        };
        let params = Params {
            name: Some(name),
            size: d.size,
            server: d.server.clone(),
            move_volume: d.move_volume,
            location: d.location.clone(),
            format: d.format,
            automount: d.automount,
            labels: d.labels.clone(),
            delete_protection: d.delete_protection,
            ..item_defaults(p, State::Present)
        };
        out.push(checked(params, host, Kind::Volume, &where_, warnings)?);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out
        .iter()
        .find(|e| !seen.insert((e.kind, e.params.name.clone(), e.params.id)))
    {
        return Err(format!(
            "volume {} is listed twice; give each volume once",
            dup.label()
        ));
    }
    Ok(out)
}

/// Checks one entry's options with the rules of `kbv3_volume`.
fn checked(
    params: Params,
    host: String,
    kind: Kind,
    where_: &str,
    warnings: &mut Vec<String>,
) -> Result<Entry, String> {
    check(&params, warnings).map_err(|e| format!("{where_} ({host}): {e}"))?;
    Ok(Entry { host, kind, params })
}

/// The options every entry shares.
fn item_defaults(p: &VolumesParams, state: State) -> Params {
    Params {
        name: None,
        id: None,
        state,
        size: None,
        server: None,
        move_volume: false,
        location: None,
        format: None,
        automount: false,
        labels: None,
        delete_protection: None,
        expect: None,
        diff_file: None,
        confirm: None,
        wait: true,
        wait_timeout: p.wait_timeout,
        request_timeout: p.request_timeout,
        allow_insecure_http: p.allow_insecure_http,
        api_token: None,
        api_endpoint: None,
    }
}
