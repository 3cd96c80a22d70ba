//! The `kbv3_volumes` Ansible module: one task on the controller converges a
//! whole fleet's volumes (desired volumes and guarded deletions) with paged
//! lists, bounded concurrency, batched action polling and one deadline, on
//! the reconcile core it shares with `kbv3_volume` ([`crate::reconcile`]).
//!
//! A real run locks the hosts it will change and journals every change in
//! the state directory (`state_dir`, by default the diff's folder), and
//! rebuilds the PH3-02 report from the journal when it ends
//! ([`crate::reconcile`]).

pub mod converge;
pub mod fleet;
pub mod index;
pub mod params;
pub mod pool;
pub mod results;
pub mod summary;

use std::path::{Path, PathBuf};

use serde::Serialize;

use serde_json::{json, Map, Value};

use crate::ansible::args::{parse_as, Invocation, Settings};
use crate::ansible::output::{add_invocation, Failed};
use crate::fleet::report;
use crate::fleet::reviewed::ReviewedDiff;
use crate::hcloud::client::Stats;
use crate::hcloud::{Client, Environment};
use crate::reconcile;
use crate::reconcile::desired::ExpectServer;
use crate::reconcile::failure::{Code, Next, Refusal};
use crate::reconcile::journal::Event;
use crate::reconcile::reviewed;
use crate::reconcile::source::Source;
use crate::reconcile::view::VolumeDiff;
use crate::reconcile::Mode;

use index::Index;
use params::{Entry, Kind, VolumesParams};
use results::Results;

/// Runs the module on the args JSON; returns the result object. The task
/// fails (`failed: true`, `failure.code`) only when nothing could be done
/// for anyone (bad options, an unconfirmed diff, the lists unreadable); a
/// volume that fails fails its host's entry.
pub fn run(args: &Value, env: &Environment) -> Value {
    let mut inv = match parse_as::<VolumesParams>(args, "kbv3_volumes") {
        Ok(inv) => inv,
        Err(msg) => return Failed::invalid(msg).into_result(&[], &Map::new(), Settings::default()),
    };
    let fail = |inv: &Invocation<VolumesParams>, r: Refusal| {
        Failed::refused(&r).into_result(&inv.warnings, &inv.module_args, inv.settings)
    };
    let read = match fleet::expand(&mut inv.params, &mut inv.warnings) {
        Ok(read) => read,
        Err(msg) => return fail(&inv, Refusal::new(Code::InvalidArgument, msg)),
    };
    let mut entries = match params::entries(&inv.params, &mut inv.warnings) {
        Ok(e) => e,
        Err(msg) => return fail(&inv, Refusal::new(Code::InvalidArgument, msg)),
    };
    let diff = match bind_deletions(&inv.params, inv.settings.mode, &mut entries, read) {
        Ok(d) => d,
        Err(r) => return fail(&inv, r),
    };
    let p = &inv.params;
    // Keep room for every worker's request in flight.
    let client = match p.run_client(2 * p.concurrency).build(env) {
        Ok(c) => c,
        Err(e) => return fail(&inv, Refusal::new(Code::InvalidArgument, e.to_string())),
    };
    let done = match execute(&client, &inv, &entries, diff.as_ref()) {
        Ok(done) => done,
        Err(r) => {
            let mut result = fail(&inv, r);
            result["api_requests"] = json!(client.stats());
            return result;
        }
    };
    let mode = inv.settings.mode;
    let stats = client.stats();
    let left_alone = diff.as_ref().map_or(0, |d| d.diff.volumes_left_alone.len());
    let results = &done.results;
    let diffs = inv.settings.diff.then(|| {
        results
            .volumes
            .iter()
            .filter_map(|v| v.diff.as_ref())
            .collect()
    });
    let printed = Printed {
        changed: results.changed(),
        msg: summary::line(&results.totals, mode),
        results: results.printed(),
        warnings: &done.warnings,
        report: done.report.as_ref(),
        run_id: done.journal.as_ref().map(|j| j.0.as_str()),
        journal: done.journal.as_ref().map(|j| j.1.as_path()),
        diff: diffs,
        summary: summary::lines(results, &stats, mode, left_alone),
        stale_messages: results.stale().map(|v| v.msg.as_str()).collect(),
        next: Next::after(&results.refused_deletions(), results.totals.stale > 0),
        api_requests: &stats,
    };
    let mut result = serde_json::to_value(printed).unwrap_or_default();
    add_invocation(&mut result, &inv.module_args, inv.settings);
    result
}

/// A fleet run's result as printed.
#[derive(Serialize)]
struct Printed<'a> {
    changed: bool,
    msg: String,
    #[serde(flatten)]
    results: results::Printed<'a>,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a [PathBuf; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<Vec<&'a VolumeDiff>>,
    summary: Vec<String>,
    /// Why each stale volume was left alone.
    stale_messages: Vec<&'a str>,
    /// What to do next if anything was left undone.
    next: Next,
    api_requests: &'a Stats,
}

/// What a run that could act did.
struct Done {
    results: Results,
    warnings: Vec<String>,
    /// The report rebuilt from the journal (JSON, Markdown).
    report: Option<[PathBuf; 2]>,
    /// The run's id and journal, when it kept one.
    journal: Option<(String, PathBuf)>,
}

fn execute(
    client: &Client,
    inv: &Invocation<VolumesParams>,
    entries: &[Entry],
    diff: Option<&ReviewedDiff>,
) -> Result<Done, Refusal> {
    let settings = inv.settings;
    let state_dir = inv
        .params
        .state_dir
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| diff.and_then(|d| d.path.parent().map(PathBuf::from)));
    // A real run locks its hosts before it reads anything.
    let locked = match state_dir
        .as_deref()
        .filter(|_| !settings.mode.is_check() && !entries.is_empty())
    {
        Some(dir) => {
            let mut hosts: Vec<String> = entries.iter().map(|e| e.host.clone()).collect();
            hosts.sort();
            hosts.dedup();
            Some(reconcile::lock(dir, hosts).map_err(|msg| Refusal::new(Code::Locked, msg))?)
        }
        None => None,
    };
    let mut index = if entries.is_empty() {
        Index::default()
    } else {
        Index::read(client)
            .map_err(|e| Refusal::api("cannot list the project's volumes and servers", &e))?
    };
    if let Some(r) = diff.filter(|_| !entries.is_empty()) {
        same_servers(r, &index)?;
    }
    let session = match locked {
        Some(l) => {
            let code = diff.map(|d| d.code.clone());
            let path = diff.map(|d| d.path.display().to_string());
            Some(
                l.start(code, path, &index)
                    .map_err(|msg| Refusal::new(Code::Locked, msg))?,
            )
        }
        None => None,
    };
    let run = converge::Run {
        client,
        journal: session.as_ref().map(|s| &s.journal),
        detached_before: session
            .as_ref()
            .map(|s| s.detached_before.clone())
            .unwrap_or_default(),
        workers: usize::try_from(inv.params.concurrency).unwrap_or(1),
    };
    let outcomes = converge::converge(&run, &mut index, entries, settings.mode);
    let results = Results::build(entries, &outcomes, settings.mode, settings.diff);
    let mut warnings = inv.warnings.clone();
    // Recoveries (an adopted create, a volume already gone) show on the task.
    warnings.extend(
        entries
            .iter()
            .zip(&outcomes)
            .flat_map(|(e, o)| o.warnings.iter().map(move |w| format!("{}: {w}", e.host))),
    );
    let failed_hosts = &results.totals.failed_hosts;
    if !failed_hosts.is_empty() {
        warnings.push(format!(
            "{} hosts failed: {} (see hosts.<name>.msg)",
            failed_hosts.len(),
            failed_hosts.join(", ")
        ));
    }
    let mut done = Done {
        results,
        warnings,
        report: None,
        journal: None,
    };
    if let (Some(s), Some(dir)) = (&session, &state_dir) {
        let ended = s.journal.write(Event::End {
            changed: done.results.changed(),
            failed_hosts: done.results.totals.failed_hosts.clone(),
        });
        match ended.and_then(|_| report::rebuild(dir)) {
            Ok((json_path, md_path, _)) => done.report = Some([json_path, md_path]),
            Err(e) => done.warnings.push(format!(
                "the journal holds this run, but the report was not rebuilt: {e}"
            )),
        }
        done.journal = Some((s.journal.run().to_string(), s.journal.path().to_path_buf()));
        if s.resolved > 0 {
            done.warnings.push(format!(
                "{} changes of an earlier run that was killed had no recorded outcome; this run read the API and recorded what became of them",
                s.resolved
            ));
        }
    }
    Ok(done)
}

/// Takes each deletion's guard from the reviewed diff (`diff_file`): the
/// run must be confirmed with the diff's code, and a deletion the diff does
/// not list fails before any request. A deletion without a host reports to
/// the server it was reviewed on (or `unattached`). `read`: the diff
/// already read (by the fleet input), else `diff_file` is read here.
fn bind_deletions(
    p: &VolumesParams,
    mode: Mode,
    entries: &mut [Entry],
    read: Option<ReviewedDiff>,
) -> Result<Option<ReviewedDiff>, Refusal> {
    let deletions = entries.iter().filter(|e| e.kind == Kind::Deletion).count();
    let diff = match read {
        Some(r) => Some(r),
        None => p.diff_file.as_deref().map(reviewed::load).transpose()?,
    };
    if let Some(r) = diff.as_ref().filter(|_| deletions > 0) {
        let what = format!("{deletions} volumes are listed for deletion by");
        reviewed::require_confirmation(r, p.confirm.as_deref(), mode, &what)?;
        for e in entries.iter_mut().filter(|e| e.kind == Kind::Deletion) {
            let id = e.desired.id.unwrap_or_default();
            let expect =
                reviewed::reviewed_expect(r, id, e.desired.expect.as_ref()).map_err(|r| {
                    Refusal::new(
                        r.code,
                        format!("deletion of volume {id} ({}): {}", e.host, r.msg),
                    )
                })?;
            e.desired.expect = Some(expect);
        }
    }
    for e in entries.iter_mut().filter(|e| e.host.is_empty()) {
        e.host = match e.desired.expect.as_ref().map(|x| &x.server) {
            Some(ExpectServer::Attached(s)) => s.clone(),
            _ => "unattached".into(),
        };
    }
    Ok(diff)
}

/// Refuses a diff whose fleet servers are not the ones the API shows under
/// those names (a diff of another project, or of servers since rebuilt).
fn same_servers(r: &ReviewedDiff, index: &Index) -> Result<(), Refusal> {
    let mut wrong = Vec::new();
    for (host, id) in &r.diff.fleet_servers {
        match index.server_named(host).ok().flatten() {
            Some(s) if s.id == *id => {}
            Some(s) => wrong.push(format!(
                "{host} is server {} here, the diff says {id}",
                s.id
            )),
            None => wrong.push(format!(
                "{host} (server {id} in the diff) does not exist here"
            )),
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        Code::StalePlan,
        format!(
            "this diff ({}) was made for other servers (another project?): {}. Nothing was changed. \
             Run PH3-01 again against this project, review the new diff and confirm its code.",
            r.path.display(),
            wrong.join("; ")
        ),
    ))
}

/// The JSON Schema of the options (for `kbv3_volumes --schema`).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(VolumesParams)).unwrap_or_default()
}
