//! `kbv3_inventory`: the fleet's Ansible inventory script and the PH3-01
//! commands. See `kbv3::fleet::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let env = kbv3::hcloud::Environment::read();
    match kbv3::fleet::cli::run(kbv3::fleet::cli::Cli::parse(), &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbv3_inventory: {e:#}");
            ExitCode::FAILURE
        }
    }
}
