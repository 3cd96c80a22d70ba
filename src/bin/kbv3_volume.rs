//! `kbv3_volume`: a binary Ansible module. Reads the args JSON from the file
//! named by the first argument (what Ansible does) or from stdin, writes one
//! JSON object on stdout, logs nothing else there. `--schema` prints the
//! options' JSON Schema. See `kbv3::module`.

use std::io::Read;
use std::process::ExitCode;

use serde_json::{json, Value};

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--schema") {
        println!(
            "{}",
            serde_json::to_string_pretty(&kbv3::module::schema()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let text = match &arg {
        Some(path) => std::fs::read_to_string(path)
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
        Ok(args) => kbv3::module::run(&args, &kbv3::hcloud::Environment::read()),
        Err(msg) => json!({ "failed": true, "changed": false, "msg": msg }),
    };
    println!("{result}");
    if result["failed"] == json!(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
