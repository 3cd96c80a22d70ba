//! The fleet: its files, the inventory built from them, and PH3-01.
//!
//! - [`table`]: tab-separated files read with the `csv` crate; every bad line
//!   becomes a [`table::LineError`] naming the file and line.
//! - [`rules`]: `volume_rules_v3.tsv`, role → volume class and size.
//! - [`servers`]: `servers_v3.tsv`, the rebuildable servers, checked against the rules.
//! - [`plan`]: the target volume of every server (pure).
//! - [`snapshot`]: the existing volumes, read from the API.
//! - [`diff`]: plan + snapshot → what to delete, create, keep (pure).
//! - [`reviewed`]: the diff file as reviewed: its bytes' confirmation code.
//! - [`inventory`]: the Ansible inventory JSON (pure).
//! - [`paths`]: where the files are (next to the executable, or from the environment).
//! - [`cli`]: the `kbv3_inventory` command.

pub mod cli;
pub mod diff;
pub mod inventory;
pub mod paths;
pub mod plan;
pub mod report;
pub mod reviewed;
pub mod rules;
pub mod servers;
pub mod snapshot;
pub mod table;

/// The plan of the fleet files at `paths`: every server's target volume.
pub fn load_plan(paths: &paths::FleetPaths) -> anyhow::Result<plan::Plan> {
    let rules = rules::load(&paths.rules)?;
    let hosts = servers::load(&paths.servers, &rules)?;
    Ok(plan::build(&hosts, &rules))
}
