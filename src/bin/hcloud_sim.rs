//! `hcloud-sim`: a local, stateful Hetzner Cloud API simulator (volumes,
//! servers, locations, actions). See `kbv3::sim`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kbv3::sim::faults::FaultSpec;
use kbv3::sim::server::{run, Options};

/// A local Hetzner Cloud API simulator. Prints its endpoint URL on the first
/// line of stdout once it accepts connections; stops on SIGTERM or SIGINT.
#[derive(Parser, Debug)]
#[command(name = "hcloud-sim", version, args_override_self = true)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The bearer token clients must send.
    #[arg(long)]
    token: String,
    /// Seed file: the servers and volumes the project starts with.
    #[arg(long)]
    seed: PathBuf,
    /// State file: loaded when present (instead of the seed), saved after every change.
    #[arg(long)]
    state: Option<PathBuf>,
    /// How long an asynchronous action runs, in milliseconds.
    #[arg(long, default_value_t = 200)]
    action_ms: u64,
    /// Requests allowed per rate window (the API allows 3600 per hour).
    #[arg(long, default_value_t = 3600)]
    rate_limit: u64,
    /// The rate window in seconds.
    #[arg(long, default_value_t = 3600)]
    rate_window: u64,
    /// Injected faults, e.g. `429=0.05,409=0.05,502=0.05,504=0.05,stall=0.01,action_error=0.1`.
    #[arg(long, default_value = "")]
    faults: FaultSpec,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    /// How long a stalled answer is held back, in milliseconds.
    #[arg(long, default_value_t = 65_000)]
    stall_ms: u64,
    /// Append one JSON line per request (method, path, query, status, duration).
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// Append one JSON line per JSON answer, body included (for conformance checks).
    #[arg(long)]
    response_log: Option<PathBuf>,
    /// Back every volume with a sparse file in DIR, and attached volumes with
    /// loop devices linked from DIR/by-id (needs root). Released on exit.
    #[arg(long, value_name = "DIR")]
    block_devices: Option<PathBuf>,
    /// With --block-devices: only volumes attached to these servers become loop devices.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    block_device_servers: Vec<String>,
    /// Hold a request while DIR has a file named after it ("POST _v1_volumes_7_actions_detach"),
    /// writing "<name>.held" meanwhile: tests place events at exact moments with it.
    #[arg(long, value_name = "DIR")]
    hold_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        listen: cli.listen,
        token: cli.token,
        seed: cli.seed,
        state: cli.state,
        action_ms: cli.action_ms,
        rate_limit: cli.rate_limit,
        rate_window_ms: cli.rate_window.saturating_mul(1000),
        faults: cli.faults,
        fault_seed: cli.fault_seed,
        stall_ms: cli.stall_ms,
        request_log: cli.request_log,
        response_log: cli.response_log,
        block_devices: cli.block_devices,
        block_device_servers: cli.block_device_servers,
        hold_dir: cli.hold_dir,
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hcloud-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}
