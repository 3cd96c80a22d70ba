//! Where the fleet files are.
//!
//! Ansible runs the inventory from its own working directory, so files are
//! found relative to the executable's real location: the first ancestor folder
//! holding `servers/servers_v3.tsv`. Environment variables override:
//! `KBV3_FLEET_DIR` (the folder of the fleet files), `KBV3_STATE_DIR` (the
//! state directory: PH3-01's plan, snapshot and diff, PH3-02's journal,
//! locks and report; default the fleet folder), and per file
//! `KBV3_SERVERS_FILE`, `KBV3_RULES_FILE`, `KBV3_DIFF_FILE`.

use std::path::{Path, PathBuf};

/// The fleet files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetPaths {
    /// The state directory.
    pub state: PathBuf,
    pub servers: PathBuf,
    pub rules: PathBuf,
    pub plan: PathBuf,
    pub existing: PathBuf,
    pub diff: PathBuf,
}

/// The paths, from the environment or the executable's location.
pub fn resolve() -> FleetPaths {
    resolve_with(|name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// The paths the inventory published in `kbv3_fleet.env` (the same
/// `KBV3_*` variables), so that a module reads the files the inventory read.
pub fn from_vars(vars: &std::collections::BTreeMap<String, String>) -> FleetPaths {
    resolve_with(|name| vars.get(name).filter(|v| !v.is_empty()).map(PathBuf::from))
}

fn resolve_with(var: impl Fn(&str) -> Option<PathBuf>) -> FleetPaths {
    let dir = var("KBV3_FLEET_DIR").unwrap_or_else(|| {
        let exe = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
        exe.as_deref()
            .and_then(|e| {
                e.ancestors()
                    .skip(1)
                    .find(|d| d.join("servers/servers_v3.tsv").is_file())
            })
            .map(|d| d.join("servers"))
            .unwrap_or_else(|| PathBuf::from("servers"))
    });
    let state = var("KBV3_STATE_DIR").unwrap_or_else(|| dir.clone());
    in_dir(
        &dir,
        &state,
        var("KBV3_SERVERS_FILE"),
        var("KBV3_RULES_FILE"),
        var("KBV3_DIFF_FILE"),
    )
}

fn in_dir(
    dir: &Path,
    state: &Path,
    servers: Option<PathBuf>,
    rules: Option<PathBuf>,
    diff: Option<PathBuf>,
) -> FleetPaths {
    FleetPaths {
        state: state.to_path_buf(),
        servers: servers.unwrap_or_else(|| dir.join("servers_v3.tsv")),
        rules: rules.unwrap_or_else(|| dir.join("volume_rules_v3.tsv")),
        plan: state.join("volume_plan_v3.json"),
        existing: state.join("existing_volumes_hetzner.json"),
        diff: diff.unwrap_or_else(|| state.join("volume_diff_v3.json")),
    }
}

/// A PH3 playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playbook {
    Ph3_01,
    Ph3_02,
}

impl Playbook {
    /// How the user runs it: `kbv3.hcloud.ph3_02` when this executable is the
    /// installed collection's, `playbooks/ph3-02.yml` in a checkout.
    pub fn run_as(self) -> &'static str {
        let exe = std::env::current_exe().ok();
        self.named_for(exe.as_deref())
    }

    fn named_for(self, exe: Option<&Path>) -> &'static str {
        let in_collection = exe.is_some_and(|e| {
            e.ancestors()
                .any(|a| a.ends_with("ansible_collections/kbv3/hcloud"))
        });
        match (self, in_collection) {
            (Playbook::Ph3_01, true) => "kbv3.hcloud.ph3_01",
            (Playbook::Ph3_02, true) => "kbv3.hcloud.ph3_02",
            (Playbook::Ph3_01, false) => "playbooks/ph3-01.yml",
            (Playbook::Ph3_02, false) => "playbooks/ph3-02.yml",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbooks_are_named_as_the_user_runs_them() {
        let installed = Path::new(
            "/home/u/.ansible/collections/ansible_collections/kbv3/hcloud/plugins/modules/volume",
        );
        let checkout = Path::new("/srv/kbv3/inventory/kbv3_inventory");
        assert_eq!(
            Playbook::Ph3_02.named_for(Some(installed)),
            "kbv3.hcloud.ph3_02"
        );
        assert_eq!(
            Playbook::Ph3_01.named_for(Some(installed)),
            "kbv3.hcloud.ph3_01"
        );
        assert_eq!(
            Playbook::Ph3_02.named_for(Some(checkout)),
            "playbooks/ph3-02.yml"
        );
        assert_eq!(Playbook::Ph3_01.named_for(None), "playbooks/ph3-01.yml");
    }
}
