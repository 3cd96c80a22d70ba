//! The shell of a binary Ansible module: read the args JSON from the file
//! named by the first argument (what Ansible does) or from stdin, run the
//! module, write one JSON object on stdout and nothing else there.
//! `--schema` prints the options' JSON Schema.

use std::io::Read;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::hcloud::Environment;

/// Runs a module binary: `run` takes the args and the environment, `schema`
/// gives the options' JSON Schema.
pub fn main(run: fn(&Value, &Environment) -> Value, schema: fn() -> Value) -> ExitCode {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--schema") {
        println!(
            "{}",
            serde_json::to_string_pretty(&schema()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let text = match &arg {
        Some(path) => crate::fsutil::read_bounded(path.as_ref(), crate::fsutil::MAX_JSON_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("cannot read the args file {path}: {e}")),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map(|_| s)
                .map_err(|e| format!("cannot read the args from stdin: {e}"))
        }
    };
    let result = match text.and_then(|t| {
        serde_json::from_str::<Value>(&t).map_err(|e| format!("the args are not valid JSON: {e}"))
    }) {
        Ok(args) => run(&args, &Environment::read()),
        Err(msg) => json!({ "failed": true, "changed": false, "msg": msg }),
    };
    println!("{result}");
    if result["failed"] == json!(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
