//! The shell of a binary Ansible module: read the args JSON from the file
//! named by the first argument (what Ansible does) or from stdin, run the
//! module, write one JSON object on stdout and nothing else there.
//! `--schema` prints the options' JSON Schema.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::hcloud::Environment;

use super::output::Failed;

/// What a module binary runs.
#[derive(Clone, Copy)]
pub struct Module {
    /// The module: its args and the environment in, its result out.
    pub run: fn(&Value, &Environment) -> Value,
    /// The options' JSON Schema.
    pub schema: fn() -> Value,
}

/// Runs a module binary. `called` is the module the binary was called as;
/// without one, the args name it (`_ansible_module_name`), looked up with
/// `by_name`.
pub fn main(
    called: Option<Module>,
    arg: Option<&OsStr>,
    by_name: fn(&str) -> Option<Module>,
) -> ExitCode {
    if arg.and_then(OsStr::to_str) == Some("--schema") {
        let Some(module) = called else {
            eprintln!("kbv3: which module's schema? Run `kbv3 volume --schema` or `kbv3 volumes --schema`.");
            return ExitCode::FAILURE;
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&(module.schema)()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let result = match read_args(arg) {
        Ok(args) => match called.or_else(|| named_in(&args, by_name)) {
            Some(module) => (module.run)(&args, &Environment::read()),
            None => failure(
                "kbv3: cannot tell which module to run: the args name none (_ansible_module_name). \
                 Run the binary as kbv3_volume or kbv3_volumes (a copy or link named so), \
                 or as `kbv3 volume ARGS_FILE`.",
            ),
        },
        Err(msg) => failure(&msg),
    };
    println!("{result}");
    if result["failed"] == json!(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A run refused before any module ran, in the one failure shape.
fn failure(msg: &str) -> Value {
    serde_json::to_value(Failed::invalid(msg)).unwrap_or_default()
}

/// The module Ansible says it is running.
fn named_in(args: &Value, by_name: fn(&str) -> Option<Module>) -> Option<Module> {
    args.get("_ansible_module_name")
        .and_then(Value::as_str)
        .and_then(by_name)
}

/// The args JSON from the file Ansible names, or from stdin.
fn read_args(arg: Option<&OsStr>) -> Result<Value, String> {
    let text = match arg {
        Some(path) => {
            let path = Path::new(path);
            crate::fsutil::read_bounded(path, crate::fsutil::MAX_JSON_BYTES)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("cannot read the args file {}: {e}", path.display()))?
        }
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read the args from stdin: {e}"))?;
            s
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("the args are not valid JSON: {e}"))
}
