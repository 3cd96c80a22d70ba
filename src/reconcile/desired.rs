//! The desired state of one volume, typed and built once from a module's
//! validated options: with what was observed, the planner's only input.
//! Shared by `kbv3_volume` and every entry of `kbv3_volumes`.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ansible::convert::{custom, labels, opt, opt_id, opt_string, to_int, to_text, within};
use crate::hcloud::rules;
use crate::hcloud::types::Labels;

/// Whether a run changes anything: Ansible's check mode, or a real run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Plan and report only.
    Check,
    /// Plan and carry the plan out.
    #[default]
    Apply,
}

impl Mode {
    /// True in check mode.
    pub fn is_check(self) -> bool {
        self == Mode::Check
    }
}

/// What the volume should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Exists (created when missing) and matches the other options.
    #[default]
    Present,
    /// Attached to no server; a missing volume is fine.
    Detached,
    /// Does not exist: detached, then deleted.
    Absent,
}

/// Filesystem Hetzner creates on a new volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ext4,
    Xfs,
}

impl Format {
    /// The API's name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ext4 => "ext4",
            Format::Xfs => "xfs",
        }
    }
}

/// What `expect.server` says: not checked (key absent), must be unattached
/// (`null`), or attached to this server (a name or an id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExpectServer {
    #[default]
    Unchecked,
    Unattached,
    Attached(String),
}

impl ExpectServer {
    /// True when the volume is expected attached to a server.
    pub fn is_attached(&self) -> bool {
        matches!(self, ExpectServer::Attached(_))
    }
}

impl std::fmt::Display for ExpectServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectServer::Unchecked => f.write_str("any server"),
            ExpectServer::Unattached => f.write_str("no server"),
            ExpectServer::Attached(s) => f.write_str(s),
        }
    }
}

/// What a reviewed plan says the volume is; `detached` and `absent` act only
/// while the volume still matches, checked right before the first change and
/// again right before the delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The volume's id.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<i64>,
    /// The volume's name.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// The server it is attached to, by name or id; `null`: it must be attached to no server.
    #[serde(default, deserialize_with = "expect_server")]
    #[schemars(with = "Option<String>")]
    pub server: ExpectServer,
    /// Its size in GB.
    #[serde(default, deserialize_with = "expect_size")]
    pub size: Option<u32>,
    /// Its location (`nbg1`, …).
    #[serde(default, deserialize_with = "opt_string")]
    pub location: Option<String>,
    /// Its labels, exactly.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<Labels>,
}

/// What one volume should be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub name: Option<String>,
    pub id: Option<i64>,
    pub state: State,
    /// GB: required to create; grows an existing volume; never shrinks.
    pub size: Option<u32>,
    /// With `present`: the server (name or id) to be attached to.
    pub server: Option<String>,
    /// Detach from another server to attach to `server`.
    pub move_volume: bool,
    pub location: Option<String>,
    pub format: Option<Format>,
    pub automount: bool,
    /// `Some`: exactly these labels; `None`: untouched.
    pub labels: Option<Labels>,
    pub delete_protection: Option<bool>,
    /// With `detached`/`absent`: act only while the volume still matches this.
    pub expect: Option<Expect>,
}

impl Desired {
    /// The volume's name, or its id.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.id.unwrap_or_default().to_string())
    }

    /// Rules between the values, and names the API would refuse; `warnings`
    /// collects values that the state makes meaningless.
    ///
    /// # Errors
    /// The message for the user, naming the option.
    pub fn check(&self, warnings: &mut Vec<String>) -> Result<(), String> {
        if self.name.is_none() && self.id.is_none() {
            return Err("one of the following is required: name, id".into());
        }
        if let Some(name) = &self.name {
            rules::check_volume_name(name).map_err(|e| format!("argument 'name': '{name}' {e}"))?;
        }
        if let Some(labels) = &self.labels {
            for (k, v) in labels {
                rules::check_label(k, v).map_err(|e| format!("argument 'labels': {e}"))?;
            }
        }
        if self.move_volume && self.server.is_none() {
            return Err(
                "argument 'move': move needs server (the server to move the volume to)".into(),
            );
        }
        if let Some(e) = &self.expect {
            if self.state == State::Present {
                return Err("argument 'expect': applies to state detached or absent only".into());
            }
            if e.id.is_none() && e.name.is_none() {
                return Err(
                    "argument 'expect': give at least the id or the name of the volume you reviewed; an expect without them guards nothing"
                        .into(),
                );
            }
        }
        if self.state != State::Present {
            for (given, name) in [
                (self.server.is_some(), "server"),
                (self.location.is_some(), "location"),
                (self.format.is_some(), "format"),
            ] {
                if given {
                    warnings.push(format!(
                        "{name} is ignored with state={}",
                        self.state.name()
                    ));
                }
            }
        }
        Ok(())
    }
}

impl State {
    /// `present`, `detached` or `absent`.
    pub fn name(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Detached => "detached",
            State::Absent => "absent",
        }
    }
}

fn expect_server<'de, D: Deserializer<'de>>(d: D) -> Result<ExpectServer, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(ExpectServer::Unattached),
        v => custom(to_text(&v).map(ExpectServer::Attached)),
    }
}

fn expect_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    opt(d, |v| {
        let n = within(to_int(v)?, 1, u64::from(u32::MAX))?;
        u32::try_from(n).map_err(|e| e.to_string())
    })
}
