//! The args of a binary module: the JSON file Ansible writes → the options
//! `P`, the `_ansible_*` settings and `invocation.module_args`.
//!
//! Ansible applies no argument spec to binary modules, so this does what
//! `AnsibleModule` would: it refuses unknown options (unless
//! `_ansible_ignore_unknown_opts`), applies aliases, and masks the token.
//! The options struct is also the source of the `--schema` output, so the
//! schema and the parser cannot disagree.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::reconcile::Mode;

use super::convert::truthy;

/// The `_ansible_*` settings a module honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// Check mode or a real run: the one place it is decided.
    pub mode: Mode,
    pub diff: bool,
    pub no_log: bool,
}

/// Everything read from the args file.
#[derive(Debug, Clone)]
pub struct Invocation<P> {
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
///
/// # Errors
/// The message for the user: args that are not an object, a setting that is not a boolean, an unknown option, or an option's value (naming it).
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
        mode: if setting("_ansible_check_mode")? {
            Mode::Check
        } else {
            Mode::Apply
        },
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
