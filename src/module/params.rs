//! The module's options: the Ansible args JSON → validated [`Params`].
//!
//! Ansible applies no argument spec to binary modules, so this module does
//! what `AnsibleModule` would: it refuses unknown options (unless
//! `_ansible_ignore_unknown_opts`), converts `"3"` to 3 and `"yes"` to true,
//! checks choices and applies defaults. The [`Params`] struct is also the
//! source of the `--schema` output, so the schema and the parser cannot
//! disagree.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::hcloud::rules;
use crate::hcloud::types::Labels;

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
    #[serde(default, deserialize_with = "opt_int")]
    pub id: Option<i64>,
    /// The volume's name.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// The server it is attached to, by name or id; `null`: it must be attached to no server.
    #[serde(default, deserialize_with = "expect_server")]
    #[schemars(with = "Option<String>")]
    pub server: ExpectServer,
    /// Its size in GB.
    #[serde(default, deserialize_with = "opt_int")]
    pub size: Option<i64>,
    /// Its location (`nbg1`, …).
    #[serde(default, deserialize_with = "opt_string")]
    pub location: Option<String>,
    /// Its labels, exactly.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<Labels>,
}

/// The options of `kbv3_volume`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kbv3_volume options")]
pub struct Params {
    /// The volume's name; required unless `id` is given.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// The volume's id.
    #[serde(default, deserialize_with = "opt_int")]
    pub id: Option<i64>,
    /// `present`, `detached` or `absent`.
    #[serde(default, deserialize_with = "state")]
    #[schemars(default = "default_state")]
    pub state: State,
    /// Size in GB: required to create; grows an existing volume; never shrinks.
    #[serde(default, deserialize_with = "opt_int")]
    pub size: Option<i64>,
    /// With `present`: the server (name or id) the volume must be attached to.
    #[serde(default, deserialize_with = "opt_string")]
    pub server: Option<String>,
    /// Detach from another server and attach to `server` (otherwise that fails).
    #[serde(default, rename = "move", deserialize_with = "boolean")]
    pub move_volume: bool,
    /// Location for a new volume; defaults to the server's. Volumes cannot move.
    #[serde(default, deserialize_with = "opt_string")]
    pub location: Option<String>,
    /// Filesystem Hetzner formats a new volume with.
    #[serde(default, deserialize_with = "format")]
    pub format: Option<Format>,
    /// Let the server mount the volume at /mnt/HC_Volume_<id> (on create or attach).
    #[serde(default, deserialize_with = "boolean")]
    pub automount: bool,
    /// When given, the volume's labels become exactly these; omitted: untouched.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<Labels>,
    /// Delete protection; omitted: untouched.
    #[serde(default, deserialize_with = "opt_bool")]
    pub delete_protection: Option<bool>,
    /// With `detached`/`absent`: act only while the volume still matches this.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// With `absent`: the reviewed PH3-01 diff that must list this volume (by `id`).
    #[serde(default, deserialize_with = "opt_string")]
    pub diff_file: Option<String>,
    /// With `diff_file`: the diff's confirmation code; required unless in check mode.
    #[serde(default, deserialize_with = "opt_string")]
    pub confirm: Option<String>,
    /// Wait for the actions to finish.
    #[serde(default = "yes", deserialize_with = "boolean")]
    pub wait: bool,
    /// Seconds the whole task may take (1 to 86400): every request, retry and action wait fits in it.
    #[serde(default = "default_wait_timeout", deserialize_with = "int")]
    pub wait_timeout: i64,
    /// Seconds one request may take, answer included (1 to 3600; never past wait_timeout).
    #[serde(default = "default_request_timeout", deserialize_with = "int")]
    pub request_timeout: i64,
    /// Allow http:// to a host other than this machine (the token then crosses the network unencrypted).
    #[serde(default, deserialize_with = "boolean")]
    pub allow_insecure_http: bool,
    /// API token; default the HCLOUD_TOKEN environment variable. Never printed.
    #[serde(default, deserialize_with = "opt_string")]
    pub api_token: Option<String>,
    /// API endpoint; default HCLOUD_ENDPOINT, else https://api.hetzner.cloud/v1.
    #[serde(default, deserialize_with = "opt_string")]
    pub api_endpoint: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_wait_timeout() -> i64 {
    600
}
fn default_request_timeout() -> i64 {
    60
}
fn default_state() -> State {
    State::Present
}

/// The `_ansible_*` settings the module honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub check_mode: bool,
    pub diff: bool,
    pub no_log: bool,
}

/// Everything read from the args file.
#[derive(Debug, Clone)]
pub struct Invocation<P = Params> {
    pub params: P,
    pub settings: Settings,
    /// The options as given, for `invocation.module_args` (token masked).
    pub module_args: Map<String, Value>,
    pub warnings: Vec<String>,
}

/// The name Ansible shows for masked secrets.
pub const MASK: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// The option names of `P`, from its schema.
pub fn option_names_of<P: JsonSchema>() -> Vec<String> {
    let schema = schemars::schema_for!(P);
    schema
        .schema
        .object
        .map(|o| o.properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// The option names of `kbv3_volume`.
pub fn option_names() -> Vec<String> {
    option_names_of::<Params>()
}

/// Parses the args JSON of `kbv3_volume`. The error is the message for the user.
pub fn parse(args: &Value) -> Result<Invocation, String> {
    let mut inv = parse_as::<Params>(args, "kbv3_volume")?;
    check(&inv.params, &mut inv.warnings)?;
    Ok(inv)
}

/// Option aliases, as hetzner.hcloud spells them: (alias, option).
pub const ALIASES: &[(&str, &str)] = &[("endpoint", "api_endpoint")];

/// The option an alias stands for (other names unchanged).
fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, option)| option)
}

/// Parses the args JSON of `module` into its options `P`, as `AnsibleModule`
/// would: the `_ansible_*` settings, unknown options, lenient conversions,
/// the token masked in `module_args`.
pub fn parse_as<P: DeserializeOwned + JsonSchema>(
    args: &Value,
    module: &str,
) -> Result<Invocation<P>, String> {
    let Value::Object(all) = args else {
        return Err("the module arguments must be a JSON object".into());
    };
    // Ansible sends these as JSON booleans. Anything else is refused before
    // any request: a check mode that cannot be read must not become a real run.
    let setting = |key: &str| {
        match all.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "{key} is {other}, not a boolean: refusing to guess whether this is a check-mode, diff or no_log run"
        )),
    }
    };
    let settings = Settings {
        check_mode: setting("_ansible_check_mode")?,
        diff: setting("_ansible_diff")?,
        no_log: setting("_ansible_no_log")?,
    };
    let flag = |key: &str| all.get(key).is_some_and(|v| truthy(v).unwrap_or(false));
    let known = option_names_of::<P>();
    let mut options = Map::new();
    let mut unknown = Vec::new();
    let mut warnings = Vec::new();
    for (k, v) in all {
        if k.starts_with("_ansible_") || canonical(k) != k {
            continue;
        }
        if known.contains(k) {
            options.insert(k.clone(), v.clone());
        } else {
            unknown.push(k.clone());
        }
    }
    // As AnsibleModule does: an alias's value wins over its option's.
    for (alias, option) in ALIASES {
        if let Some(v) = all.get(*alias) {
            if options.insert(option.to_string(), v.clone()).is_some() {
                warnings.push(format!(
                    "Both option {option} and its alias {alias} are set."
                ));
            }
        }
    }
    if !unknown.is_empty() {
        if flag("_ansible_ignore_unknown_opts") {
            warnings.push(format!(
                "ignored unsupported parameters: {}",
                unknown.join(", ")
            ));
        } else {
            return Err(format!(
                "Unsupported parameters for ({module}) module: {}. Supported parameters include: {}.",
                unknown.join(", "),
                known.join(", ")
            ));
        }
    }
    let params: P =
        serde_path_to_error::deserialize(Value::Object(options.clone())).map_err(|e| {
            let path = e.path().to_string();
            format!("argument '{path}': {}", e.into_inner())
        })?;
    let mut module_args = options;
    if module_args.contains_key("api_token") {
        module_args.insert("api_token".into(), Value::String(MASK.into()));
    }
    Ok(Invocation {
        params,
        settings,
        module_args,
        warnings,
    })
}

/// Rules between options, and values the API would refuse.
pub fn check(p: &Params, warnings: &mut Vec<String>) -> Result<(), String> {
    if p.name.is_none() && p.id.is_none() {
        return Err("one of the following is required: name, id".into());
    }
    if let Some(name) = &p.name {
        rules::check_volume_name(name).map_err(|e| format!("argument 'name': '{name}' {e}"))?;
    }
    if let Some(size) = p.size {
        rules::check_volume_size(size).map_err(|e| format!("argument 'size': {e}"))?;
    }
    if let Some(labels) = &p.labels {
        for (k, v) in labels {
            rules::check_label(k, v).map_err(|e| format!("argument 'labels': {e}"))?;
        }
    }
    for (name, value, range) in [
        ("wait_timeout", Some(p.wait_timeout), 1..=86_400),
        ("request_timeout", Some(p.request_timeout), 1..=3_600),
        ("id", p.id, 1..=i64::MAX),
        (
            "expect.id",
            p.expect.as_ref().and_then(|e| e.id),
            1..=i64::MAX,
        ),
        (
            "expect.size",
            p.expect.as_ref().and_then(|e| e.size),
            1..=i64::from(u32::MAX),
        ),
    ] {
        if let Some(v) = value.filter(|v| !range.contains(v)) {
            return Err(format!(
                "argument '{name}': must be between {} and {}, got {v}",
                range.start(),
                range.end()
            ));
        }
    }
    if p.move_volume && p.server.is_none() {
        return Err("argument 'move': move needs server (the server to move the volume to)".into());
    }
    if let Some(e) = &p.expect {
        if p.state == State::Present {
            return Err("argument 'expect': applies to state detached or absent only".into());
        }
        if e.id.is_none() && e.name.is_none() {
            return Err(
                "argument 'expect': give at least the id or the name of the volume you reviewed; an expect without them guards nothing"
                    .into(),
            );
        }
    }
    if p.diff_file.is_some() {
        if p.state != State::Absent || p.id.is_none() {
            return Err("argument 'diff_file': goes with state absent and the volume's id".into());
        }
    } else if p.confirm.is_some() {
        return Err("argument 'confirm': goes with diff_file (the diff it confirms)".into());
    }
    if p.state != State::Present {
        for (given, name) in [
            (p.server.is_some(), "server"),
            (p.location.is_some(), "location"),
            (p.format.is_some(), "format"),
        ] {
            if given {
                warnings.push(format!(
                    "{name} is ignored with state={}",
                    state_name(p.state)
                ));
            }
        }
    }
    Ok(())
}

/// `present`, `detached` or `absent`.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Present => "present",
        State::Detached => "detached",
        State::Absent => "absent",
    }
}

// ---- lenient conversions, as AnsibleModule does them ------------------------

fn truthy(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) || n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) || n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "on" | "1" => Ok(true),
            "no" | "n" | "false" | "f" | "off" | "0" => Ok(false),
            _ => Err(format!("'{s}' is not a boolean; use true or false")),
        },
        other => Err(format!("{other} is not a boolean; use true or false")),
    }
}

fn to_int(v: &Value) -> Result<i64, String> {
    const LIMIT: f64 = 9.2e18; // below i64::MAX, so the conversion below is exact enough
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < LIMIT)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{n} is not a whole number in range")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{s}' is not an integer (or out of range)")),
        other => Err(format!("{other} is not an integer")),
    }
}

fn to_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{other} is not a string")),
    }
}

fn custom<T, E: serde::de::Error>(r: Result<T, String>) -> Result<T, E> {
    r.map_err(E::custom)
}

fn opt<'de, D: Deserializer<'de>, T>(
    d: D,
    f: impl Fn(&Value) -> Result<T, String>,
) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => f(&v).map(Some).map_err(serde::de::Error::custom),
    }
}

pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    opt(d, to_text)
}
pub(crate) fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt(d, to_int)
}
fn expect_server<'de, D: Deserializer<'de>>(d: D) -> Result<ExpectServer, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(ExpectServer::Unattached),
        v => custom(to_text(&v).map(ExpectServer::Attached)),
    }
}
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt(d, truthy)
}
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    custom(to_int(&Value::deserialize(d)?))
}
pub(crate) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    custom(truthy(&Value::deserialize(d)?))
}

fn choice<T: Copy>(v: &Value, choices: &[(&str, T)]) -> Result<T, String> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let text = to_text(v)?;
    choices
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("value must be one of: {}, got: {text}", names.join(", ")))
}

fn state<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
    let choices = [
        ("present", State::Present),
        ("detached", State::Detached),
        ("absent", State::Absent),
    ];
    custom(choice(&Value::deserialize(d)?, &choices))
}

pub(crate) fn format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Format>, D::Error> {
    opt(d, |v| {
        choice(v, &[("ext4", Format::Ext4), ("xfs", Format::Xfs)])
    })
}

pub(crate) fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Labels>, D::Error> {
    opt(d, |v| {
        let Value::Object(m) = v else {
            return Err(format!("{v} is not a dictionary of labels"));
        };
        m.iter()
            .map(|(k, v)| {
                to_text(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| format!("label '{k}': {e}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Result<Invocation, String> {
        parse(&v)
    }

    #[test]
    fn strings_from_the_command_line_are_converted() {
        let inv = p(json!({"name": "v", "size": "30", "move": "yes", "server": 42, "wait": "off",
                           "labels": {"n": 1, "b": true}, "_ansible_check_mode": true, "_ansible_diff": true}))
        .unwrap();
        let params = inv.params;
        assert_eq!(
            (params.size, params.move_volume, params.wait),
            (Some(30), true, false)
        );
        assert_eq!(params.server.as_deref(), Some("42"));
        assert_eq!(params.labels.unwrap()["n"], "1");
        assert_eq!(
            inv.settings,
            Settings {
                check_mode: true,
                diff: true,
                no_log: false
            }
        );
        assert_eq!((params.state, params.wait_timeout), (State::Present, 600));
    }

    #[test]
    fn endpoint_is_an_alias_of_api_endpoint_and_wins_as_in_ansible() {
        let inv = p(json!({"name": "v", "endpoint": "http://127.0.0.1:1/v1"})).unwrap();
        assert_eq!(
            inv.params.api_endpoint.as_deref(),
            Some("http://127.0.0.1:1/v1")
        );
        assert!(inv.warnings.is_empty());
        let both =
            p(json!({"name": "v", "endpoint": "http://a/v1", "api_endpoint": "http://b/v1"}))
                .unwrap();
        assert_eq!(both.params.api_endpoint.as_deref(), Some("http://a/v1"));
        assert_eq!(
            both.warnings,
            ["Both option api_endpoint and its alias endpoint are set."]
        );
    }

    #[test]
    fn bad_arguments_have_clear_messages() {
        let cases = [
            (json!({"name": "v", "foo": 1, "bar": 2}), "Unsupported parameters for (kbv3_volume) module: bar, foo. Supported parameters include: allow_insecure_http, api_endpoint, api_token, automount,"),
            (json!({"name": "v", "size": "abc"}), "argument 'size': 'abc' is not an integer"),
            (json!({"name": "v", "size": 5}), "argument 'size': must be between 10 and 10240 (GB), got 5"),
            (json!({"size": 10}), "one of the following is required: name, id"),
            (json!({"name": "v", "state": "gone"}), "argument 'state': value must be one of: present, detached, absent, got: gone"),
            (json!({"name": "v", "format": "btrfs"}), "argument 'format': value must be one of: ext4, xfs, got: btrfs"),
            (json!({"name": "v", "wait": "maybe"}), "argument 'wait': 'maybe' is not a boolean; use true or false"),
            (json!({"name": "-v"}), "argument 'name': '-v' must start and end with a letter or digit"),
            (json!({"name": "v", "move": true}), "argument 'move': move needs server"),
            (json!({"name": "v", "expect": {"id": 1}}), "argument 'expect': applies to state detached or absent only"),
            (json!({"name": "v", "state": "absent", "expect": {"idd": 1}}), "argument 'expect.idd': unknown field `idd`, expected one of `id`, `name`, `server`, `size`, `location`"),
            (json!({"name": "v", "state": "absent", "expect": {"server": null, "size": 3}}), "argument 'expect': give at least the id or the name"),
            (json!({"name": "v", "diff_file": "d.json"}), "argument 'diff_file': goes with state absent and the volume's id"),
            (json!({"name": "v", "confirm": "abc"}), "argument 'confirm': goes with diff_file"),
            (json!({"name": "v", "_ansible_check_mode": "maybe"}), "_ansible_check_mode is \"maybe\", not a boolean"),
            (json!({"name": "v", "_ansible_no_log": 1}), "_ansible_no_log is 1, not a boolean"),
            (json!({"name": "v", "wait_timeout": 1e19}), "argument 'wait_timeout': 1e+19 is not a whole number in range"),
            (json!({"name": "v", "wait_timeout": 86401}), "argument 'wait_timeout': must be between 1 and 86400, got 86401"),
            (json!({"name": "v", "request_timeout": 0}), "argument 'request_timeout': must be between 1 and 3600, got 0"),
            (json!({"id": -3}), "argument 'id': must be between 1 and 9223372036854775807, got -3"),
            (json!({"id": "99999999999999999999"}), "argument 'id': '99999999999999999999' is not an integer (or out of range)"),
            (json!({"name": "v", "labels": {"k": [1]}}), "argument 'labels': label 'k': [1] is not a string"),
            (json!({"name": "v", "labels": {"bad key": "x"}}), "argument 'labels': label key 'bad key'"),
        ];
        for (args, want) in cases {
            let err = p(args.clone()).unwrap_err();
            assert!(err.starts_with(want), "{args}:\n got  {err}\n want {want}");
        }
    }

    #[test]
    fn expect_server_tells_null_from_absent() {
        let expect = |v: Value| {
            p(json!({"id": 1, "state": "absent", "expect": v}))
                .unwrap()
                .params
                .expect
                .unwrap()
                .server
        };
        assert_eq!(expect(json!({"id": 1})), ExpectServer::Unchecked);
        assert_eq!(
            expect(json!({"id": 1, "server": null})),
            ExpectServer::Unattached
        );
        assert_eq!(
            expect(json!({"id": 1, "server": 42})),
            ExpectServer::Attached("42".into())
        );
    }

    #[test]
    fn unknown_options_can_be_ignored_and_the_token_is_masked() {
        let inv = p(json!({"name": "v", "foo": 1, "api_token": "secret", "_ansible_ignore_unknown_opts": true})).unwrap();
        assert_eq!(inv.warnings, vec!["ignored unsupported parameters: foo"]);
        assert_eq!(inv.module_args["api_token"], json!(MASK));
        assert!(!format!("{:?}", inv.module_args).contains("secret"));
    }
}
