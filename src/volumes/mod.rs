//! The `kbv3_volumes` Ansible module: one task on the controller converges a
//! whole fleet's volumes (desired volumes and guarded deletions) with paged
//! lists, bounded concurrency, batched action polling and one deadline. The
//! planner and the steps are `kbv3_volume`'s own ([`crate::module`]).

pub mod converge;
pub mod index;
pub mod params;
pub mod pool;
pub mod results;

use serde_json::{json, Map, Value};

use crate::hcloud::{Client, Environment};
use crate::module::failure::{Code, Refusal};
use crate::module::params::{parse_as, ExpectServer, Invocation, Settings};
use crate::module::reviewed;
use crate::module::{add_invocation, run_client, RunClient};

use index::Index;
use params::{Entry, Kind, VolumesParams};

/// Runs the module on the args JSON; returns the result object. The task
/// fails (`failed: true`, `failure.code`) only when nothing could be done
/// for anyone (bad options, an unconfirmed diff, the lists unreadable); a
/// volume that fails fails its host's entry.
pub fn run(args: &Value, env: &Environment) -> Value {
    let mut inv = match parse_as::<VolumesParams>(args, "kbv3_volumes") {
        Ok(inv) => inv,
        Err(msg) => return refused(&Map::new(), Settings::default(), Code::InvalidArgument, msg),
    };
    let fail = |inv: &Invocation<VolumesParams>, r: Refusal| {
        refused(&inv.module_args, inv.settings, r.code, r.msg)
    };
    let mut entries = match params::entries(&inv.params, &mut inv.warnings) {
        Ok(e) => e,
        Err(msg) => return fail(&inv, Refusal::new(Code::InvalidArgument, msg)),
    };
    if let Err(r) = bind_deletions(&inv.params, inv.settings.check_mode, &mut entries) {
        return fail(&inv, r);
    }
    let p = &inv.params;
    let client = match run_client(
        RunClient {
            token: p.api_token.clone(),
            endpoint: p.api_endpoint.clone(),
            allow_insecure_http: p.allow_insecure_http,
            wait_timeout: p.wait_timeout,
            request_timeout: p.request_timeout,
            // Keep room for every worker's request in flight.
            in_flight: 2 * p.concurrency as u64,
        },
        env,
    ) {
        Ok(c) => c,
        Err(e) => return fail(&inv, Refusal::new(Code::InvalidArgument, e.to_string())),
    };
    let mut result = execute(&client, &inv, &entries);
    result["api_requests"] = json!(client.stats());
    result
}

fn execute(client: &Client, inv: &Invocation<VolumesParams>, entries: &[Entry]) -> Value {
    let settings = inv.settings;
    let mut index = if entries.is_empty() {
        Index::default()
    } else {
        match Index::read(client) {
            Ok(i) => i,
            Err(e) => {
                let r = Refusal::api("cannot list the project's volumes and servers", &e);
                return refused(&inv.module_args, settings, r.code, r.msg);
            }
        }
    };
    let outcomes = converge::converge(
        client,
        &mut index,
        entries,
        settings.check_mode,
        inv.params.concurrency as usize,
    );
    let mut result = results::build(entries, &outcomes, settings.check_mode, settings.diff);
    let changed = result["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v["changed"] == true));
    result["changed"] = changed.into();
    result["msg"] = summary(&result["totals"], settings.check_mode).into();
    let mut warnings = inv.warnings.clone();
    if let Some(hosts) = result["totals"]["failed_hosts"]
        .as_array()
        .filter(|h| !h.is_empty())
    {
        let names: Vec<&str> = hosts.iter().filter_map(Value::as_str).collect();
        warnings.push(format!(
            "{} hosts failed: {} (see hosts.<name>.msg)",
            names.len(),
            names.join(", ")
        ));
    }
    result["warnings"] = json!(warnings);
    if settings.diff {
        let diffs: Vec<Value> = result["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("diff").cloned())
            .collect();
        result["diff"] = json!(diffs);
    }
    add_invocation(&mut result, &inv.module_args, settings);
    result
}

/// Takes each deletion's guard from the reviewed diff (`diff_file`): the
/// run must be confirmed with the diff's code, and a deletion the diff does
/// not list fails before any request. A deletion without a host reports to
/// the server it was reviewed on (or `unattached`).
fn bind_deletions(
    p: &VolumesParams,
    check_mode: bool,
    entries: &mut [Entry],
) -> Result<(), Refusal> {
    let deletions = entries.iter().filter(|e| e.kind == Kind::Deletion).count();
    if let Some(path) = p.diff_file.as_deref().filter(|_| deletions > 0) {
        let r = reviewed::load(path)?;
        let what = format!("{deletions} volumes are listed for deletion by");
        reviewed::require_confirmation(&r, p.confirm.as_deref(), check_mode, &what)?;
        for e in entries.iter_mut().filter(|e| e.kind == Kind::Deletion) {
            let id = e.params.id.unwrap_or_default();
            let expect =
                reviewed::reviewed_expect(&r, id, e.params.expect.as_ref()).map_err(|r| {
                    Refusal::new(
                        r.code,
                        format!("deletion of volume {id} ({}): {}", e.host, r.msg),
                    )
                })?;
            e.params.expect = Some(expect);
        }
    }
    for e in entries.iter_mut().filter(|e| e.host.is_empty()) {
        e.host = match e.params.expect.as_ref().map(|x| &x.server) {
            Some(ExpectServer::Attached(s)) => s.clone(),
            _ => "unattached".into(),
        };
    }
    Ok(())
}

/// The run in one line.
fn summary(t: &Value, check_mode: bool) -> String {
    let n = |k: &str| t[k].as_u64().unwrap_or_default();
    let verb = |now: &str, past: &str| {
        if check_mode {
            format!("would {now}")
        } else {
            past.to_string()
        }
    };
    format!(
        "{} {} volumes ({} GB), {} {}, already ok {}, {} {} volumes ({} GB), stale (left alone) {}, failed {} on {} hosts",
        verb("create", "created"),
        n("created"),
        n("created_gb"),
        verb("fix", "fixed"),
        n("fixed"),
        n("ok"),
        verb("delete", "deleted"),
        n("deleted"),
        n("deleted_gb"),
        n("stale"),
        n("failed"),
        t["failed_hosts"].as_array().map_or(0, Vec::len),
    )
}

fn refused(module_args: &Map<String, Value>, settings: Settings, code: Code, msg: String) -> Value {
    let mut result = json!({ "failed": true, "changed": false, "msg": msg,
                             "failure": { "code": code, "message": msg } });
    add_invocation(&mut result, module_args, settings);
    result
}

/// The JSON Schema of the options (for `kbv3_volumes --schema`).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(VolumesParams)).unwrap_or_default()
}
