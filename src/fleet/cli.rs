//! The `kbv3_inventory` command: the inventory script protocol (`--list`,
//! `--host NAME`) and the PH3-01 commands (`plan`, `existing`, `diff`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};

use super::diff::{self, STRATEGY};
use super::paths::{self, FleetPaths};
use super::plan::{self, Plan};
use super::reviewed::{self, confirmation_code};
use super::snapshot::{self, Snapshot};
use super::{inventory, report, rules, servers};
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
        #[arg(long)]
        json: bool,
    },
    /// Append a PH3-02 run (its facts as JSON on stdin, from playbooks/ph3-02.yml)
    /// to ph3_02_report.json and rewrite ph3_02_report.md.
    Report {
        /// The folder of the report files (default: the fleet's servers/ folder).
        #[arg(long)]
        dir: Option<PathBuf>,
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
        Some(Command::Report { dir }) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the run's facts from stdin")?;
            let facts: report::RunFacts = serde_json::from_str(&text)
                .context("the run's facts on stdin are not what playbooks/ph3-02.yml sends")?;
            let dir = dir.unwrap_or_else(|| paths.diff.parent().map(Path::to_path_buf).unwrap_or_default());
            let (json_path, md_path) = (dir.join("ph3_02_report.json"), dir.join("ph3_02_report.md"));
            let runs = report::append(&json_path, &md_path, report::record(&facts, rfc3339(now_ms())))?;
            println!("recorded run {runs} in {} and {}", json_path.display(), md_path.display());
            Ok(())
        }
        Some(Command::Plan { output, json }) => {
            let plan = load_plan_from_fleet(&paths)?;
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
        Some(Command::Diff { plan, existing, output, strategy, json }) => {
            if strategy != STRATEGY {
                return Err(anyhow!("unknown strategy '{strategy}'; the only strategy is {STRATEGY} (Option A)"));
            }
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
            let diff = diff::compute(&plan, &snapshot, rfc3339(now_ms()), source);
            diff::validate(&diff, &plan).map_err(|problems| {
                anyhow!("the computed diff is inconsistent (a bug, please report it):\n  {}", problems.join("\n  "))
            })?;
            let out = output.unwrap_or(paths.diff);
            let bytes = json_bytes(&diff)?;
            write_atomic(&out, &bytes)?;
            let code = confirmation_code(&bytes);
            report(json, &diff, &format!(
                "{}wrote {}\nconfirmation code: {code}\n  review the diff, then dry-run:  ansible-playbook playbooks/ph3-02.yml --check --diff\n  and run it:                    ansible-playbook playbooks/ph3-02.yml -e kbv3_confirm_destroy={code}",
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
    let plan = load_plan_from_fleet(paths)?;
    let reviewed = if paths.diff.exists() {
        let r = reviewed::load(&paths.diff).map_err(|e| anyhow!("{e}"))?;
        diff::validate(&r.diff, &plan).map_err(|problems| {
            anyhow!(
                "{}: the PH3-01 diff cannot be used; nothing will act on it:\n  - {}\n\
                 Refresh it with PH3-01 and review it again. While this file is refused the inventory \
                 does not load, so run PH3-01 with `ansible-playbook -i localhost, playbooks/ph3-01.yml`.",
                paths.diff.display(),
                problems.join("\n  - ")
            )
        })?;
        Some(r)
    } else {
        None
    };
    let mut inv = inventory::render(&plan, reviewed.as_ref())
        .map_err(|e| anyhow!("{}: {e}", paths.rules.display()))?;
    let exe = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    inventory::add_fleet_vars(&mut inv, exe.as_deref(), paths);
    Ok(inv)
}

fn load_plan_from_fleet(paths: &FleetPaths) -> Result<Plan> {
    let rules = rules::load(&paths.rules)?;
    let hosts = servers::load(&paths.servers, &rules)?;
    Ok(plan::build(&hosts, &rules))
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
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read {what}", path.display()))?;
    serde_json::from_str(&text)
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
