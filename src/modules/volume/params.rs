//! The options of `kbv3_volume`: the args JSON → validated [`Params`] →
//! the typed [`Desired`] the planner takes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ansible::args::{parse_as, Invocation};
use crate::ansible::convert::{boolean, bounded, opt_id, opt_string};
use crate::modules::options::{connection_options, state};
use crate::reconcile::desired::{Desired, Expect, State};

connection_options! { volume_options! {
    /// The options of `kbv3_volume`.
    #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
    #[schemars(title = "kbv3_volume options")]
    pub struct Params {
        /// The volume's id.
        #[serde(default, deserialize_with = "opt_id")]
        pub id: Option<i64>,
        /// `present`, `detached` or `absent`.
        #[serde(default, deserialize_with = "state")]
        #[schemars(default = "default_state")]
        pub state: State,
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
        #[serde(default = "default_wait_timeout", deserialize_with = "bounded::<_, 1, 86_400>")]
        pub wait_timeout: u64,
        /// Seconds one request may take, answer included (1 to 3600; never past wait_timeout).
        #[serde(default = "default_request_timeout", deserialize_with = "bounded::<_, 1, 3_600>")]
        pub request_timeout: u64,
    }
} }

fn yes() -> bool {
    true
}
fn default_wait_timeout() -> u64 {
    600
}
fn default_request_timeout() -> u64 {
    60
}
fn default_state() -> State {
    State::Present
}

/// A parsed run: the options and the desired state they describe.
pub struct Parsed {
    pub inv: Invocation<Params>,
    pub desired: Desired,
}

/// Parses and checks the args JSON of `kbv3_volume`.
///
/// # Errors
/// The message for the user, naming the option.
pub fn parse(args: &serde_json::Value) -> Result<Parsed, String> {
    let mut inv = parse_as::<Params>(args, "kbv3_volume")?;
    let p = &inv.params;
    let desired = p.desired(p.id, p.state, p.expect.clone());
    desired.check(&mut inv.warnings)?;
    if p.diff_file.is_some() {
        if p.state != State::Absent || p.id.is_none() {
            return Err("argument 'diff_file': goes with state absent and the volume's id".into());
        }
    } else if p.confirm.is_some() {
        return Err("argument 'confirm': goes with diff_file (the diff it confirms)".into());
    }
    Ok(Parsed { inv, desired })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible::args::{Settings, MASK};
    use crate::reconcile::desired::ExpectServer;
    use crate::reconcile::Mode;
    use serde_json::{json, Value};

    fn p(v: Value) -> Result<Invocation<Params>, String> {
        parse(&v).map(|p| p.inv)
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
                mode: Mode::Check,
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
