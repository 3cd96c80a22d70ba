//! The `kbv3_inventory` command: the inventory script protocol (`--list`,
//! `--host NAME`) and the PH3-01 commands (`plan`, `existing`, `diff`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};

use super::diff::{self, LegacySelector, STRATEGY};
use super::paths::{self, FleetPaths, Playbook};
use super::plan::Plan;
use super::reviewed::{self, confirmation_code};
use super::snapshot::{self, Snapshot};
use super::{inventory, report};
use crate::clock::{now_ms, rfc3339};
use crate::fsutil::{json_bytes, write_atomic, write_json_atomic};
use crate::hcloud::{Client, Config, Environment};

/// Ansible inventory of the kbv3 fleet, and the PH3-01 plan, snapshot and diff.
///
/// Files are found next to the executable (the first ancestor folder with
/// servers/servers_v3.tsv) unless KBV3_FLEET_DIR, KBV3_SERVERS_FILE,
/// KBV3_RULES_FILE or KBV3_DIFF_FILE say otherwise. API access uses
/// HCLOUD_TOKEN and HCLOUD_ENDPOINT.
#[derive(Parser, Debug)]
#[command(
    name = "kbv3_inventory",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print the whole inventory (Ansible calls this).
    #[arg(long, conflicts_with = "host")]
    list: bool,
    /// Print one host's variables.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the volume plan (volume_plan_v3.json) from the fleet files.
    Plan {
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print the JSON document instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Write the snapshot of existing volumes (existing_volumes_hetzner.json) from the API.
    Existing {
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write the diff (volume_diff_v3.json) from the plan and the live state or a snapshot.
    Diff {
        /// The plan file (default: the fleet's volume_plan_v3.json).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Compare with this snapshot file instead of the live API (offline).
        #[arg(long)]
        existing: Option<PathBuf>,
        #[arg(long)]
        output: Option<PathBuf>,
        /// Only destroy_and_recreate_all (the report's Option A).
        #[arg(long, default_value = STRATEGY)]
        strategy: String,
        /// Unattached volumes whose names match one of these patterns
        /// (comma-separated, `*` and `?` wildcards) are legacy orphans to
        /// delete; "" for none.
        #[arg(long, default_value = "vol-*")]
        legacy_names: String,
        /// Unattached volumes whose labels match this Hetzner label
        /// selector are legacy orphans too.
        #[arg(long)]
        legacy_label_selector: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild ph3_02_report.json and .md from the journal in the state
    /// directory; with --host-side, first add the host side's facts of a
    /// run (JSON on stdin, from PH3-02) to the journal.
    Report {
        /// The state directory (default: KBV3_STATE_DIR, else the fleet's folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Read the host side's facts from stdin.
        #[arg(long)]
        host_side: bool,
    },
}

/// How long `existing` and `diff` may take against the API, retries included.
const API_DEADLINE: Duration = Duration::from_secs(600);

/// Runs the command with the API settings of the environment; the error,
/// if any, is for the user as it is.
pub fn run(cli: Cli, env: &Environment) -> Result<()> {
    let paths = paths::resolve();
    match cli.command {
        None if cli.list => print_json(&list(&paths)?),
        None => match cli.host {
            Some(name) => {
                let inv = list(&paths)?;
                print_json(inv["_meta"]["hostvars"].get(&name).unwrap_or(&json!({})))
            }
            None => Err(anyhow!("nothing to do: use --list, --host NAME, or a command (plan, existing, diff, report); see --help")),
        },
        Some(Command::Report { dir, host_side }) => {
            let dir = dir.unwrap_or(paths.state);
            if host_side {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), crate::fsutil::MAX_JSON_BYTES), &mut text)
                    .context("cannot read the host side's facts from stdin")?;
                let facts: report::HostSideFacts = serde_json::from_str(&text)
                    .context("the host side's facts on stdin are not what PH3-02 sends")?;
                report::record_host_side(&dir, &facts).map_err(|e| anyhow!("{e}"))?;
            }
            let (json_path, md_path, runs) = report::rebuild(&dir).map_err(|e| anyhow!("{e}"))?;
            println!("{runs} runs recorded in {} and {}", json_path.display(), md_path.display());
            Ok(())
        }
        Some(Command::Plan { output, json }) => {
            let plan = super::load_plan(&paths)?;
            let out = output.unwrap_or(paths.plan);
            write_json_atomic(&out, &plan)?;
            report(json, &plan, &format!("{}wrote {}", plan.summary(), out.display()))
        }
        Some(Command::Existing { output, json }) => {
            let snapshot = take_snapshot(env)?;
            let out = output.unwrap_or(paths.existing);
            write_json_atomic(&out, &snapshot)?;
            report(json, &snapshot, &format!("{}wrote {}", snapshot.summary(), out.display()))
        }
        Some(Command::Diff { plan, existing, output, strategy, legacy_names, legacy_label_selector, json }) => {
            if strategy != STRATEGY {
                return Err(anyhow!("unknown strategy '{strategy}'; the only strategy is {STRATEGY} (Option A)"));
            }
            let legacy = LegacySelector {
                names: legacy_names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect(),
                label_selector: legacy_label_selector.filter(|s| !s.trim().is_empty()),
            };
            legacy.check().map_err(|e| anyhow!("--legacy-label-selector: {e}"))?;
            let plan_path = plan.unwrap_or(paths.plan);
            let plan: Plan = read_json(&plan_path, "a plan file; run `kbv3_inventory plan` first")?;
            let (snapshot, source) = match existing {
                Some(p) => (read_json::<Snapshot>(&p, "a snapshot file from `kbv3_inventory existing`")?, p.display().to_string()),
                None => {
                    let s = take_snapshot(env)?;
                    let source = s.endpoint.clone();
                    (s, source)
                }
            };
            let diff = diff::compute(&plan, &snapshot, &legacy, rfc3339(now_ms()), source);
            diff::validate(&diff, &plan).map_err(|problems| {
                anyhow!("the computed diff is inconsistent (a bug, please report it):\n  {}", problems.join("\n  "))
            })?;
            let out = output.unwrap_or(paths.diff);
            let bytes = json_bytes(&diff)?;
            write_atomic(&out, &bytes)?;
            let code = confirmation_code(&bytes);
            let ph3_02 = Playbook::Ph3_02.run_as();
            report(json, &diff, &format!(
                "{}wrote {}\nconfirmation code: {code}\n  review the diff, then dry-run:  ansible-playbook {ph3_02} --check --diff\n  and run it:                    ansible-playbook {ph3_02} -e kbv3_confirm_destroy={code}",
                diff.summary(),
                out.display()
            ))
        }
    }
}

/// The inventory answer: fleet files plus the diff when it exists. A diff
/// that does not hold together, or was made for another fleet, is refused
/// as a whole, so no playbook can act on it.
fn list(paths: &FleetPaths) -> Result<Value> {
    let plan = super::load_plan(paths)?;
    let reviewed = if paths.diff.exists() {
        let r = reviewed::load(&paths.diff).map_err(|e| anyhow!("{e}"))?;
        diff::validate(&r.diff, &plan).map_err(|problems| {
            anyhow!(
                "{}: the PH3-01 diff cannot be used; nothing will act on it:\n  - {}\n\
                 Refresh it with PH3-01 and review it again. While this file is refused the inventory \
                 does not load, so run PH3-01 with `ansible-playbook -i localhost, {}`.",
                paths.diff.display(),
                problems.join("\n  - "),
                Playbook::Ph3_01.run_as()
            )
        })?;
        Some(r)
    } else {
        None
    };
    let mut inv = inventory::render(&plan, reviewed.as_ref())
        .map_err(|e| anyhow!("{}: {e}", paths.rules.display()))?;
    inventory::add_fleet_vars(&mut inv, invoked_as().as_deref(), paths);
    Ok(inv)
}

/// This executable as it was invoked, links unresolved: the multi-call
/// binary runs as the tool its name says, so playbooks must run the
/// `kbv3_inventory` link, not the file it points to.
fn invoked_as() -> Option<PathBuf> {
    let argv0 = PathBuf::from(std::env::args_os().next()?);
    if argv0.components().count() > 1 {
        std::path::absolute(argv0).ok()
    } else {
        std::env::current_exe().ok()
    }
}

fn take_snapshot(env: &Environment) -> Result<Snapshot> {
    let cfg = Config::resolve(None, None, false, env)?;
    let client = Client::new(Config {
        deadline: Some(API_DEADLINE),
        ..cfg
    })?;
    snapshot::take(&client, rfc3339(now_ms())).context("cannot list the existing volumes")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = crate::fsutil::read_bounded(path, crate::fsutil::MAX_JSON_BYTES)
        .with_context(|| format!("{}: cannot read {what}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}:{}: not {what}: {e}", path.display(), e.line()))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn report<T: Serialize>(json: bool, doc: &T, summary: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}
