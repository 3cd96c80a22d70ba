//! The `kbv3_volume` Ansible module: parse the options into the typed
//! desired state ([`params`]), then read, plan and apply it with the shared
//! core ([`crate::reconcile`]): report the plan (check mode) or carry it out.

pub mod params;

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::ansible::args::{Invocation, Settings};
use crate::ansible::output::{add_invocation, Failed};
use crate::hcloud::{Client, Environment};
use crate::reconcile::desired::Desired;
use crate::reconcile::failure::Refusal;
use crate::reconcile::plan::{self, Plan, Step};
use crate::reconcile::view::{VolumeDiff, VolumeView};
use crate::reconcile::{apply, observe, reviewed};

use params::{Params, Parsed};

/// Runs the module on the args JSON, with the API settings of the
/// environment; returns the result object. `failed: true` and
/// `failure.code` are set on any failure; the token never appears.
pub fn run(args: &Value, env: &Environment) -> Value {
    let Parsed { inv, desired } = match params::parse(args) {
        Ok(parsed) => parsed,
        Err(msg) => return Failed::invalid(msg).into_result(&[], &Map::new(), Settings::default()),
    };
    let fail = |f: Failed| f.into_result(&inv.warnings, &inv.module_args, inv.settings);
    let p = &inv.params;
    let desired = match p.diff_file.as_deref() {
        Some(path) => {
            match reviewed::bind(path, p.confirm.as_deref(), inv.settings.mode, desired) {
                Ok(d) => d,
                Err(r) => return fail(Failed::refused(&r)),
            }
        }
        None => desired,
    };
    let client = match p.run_client(0).build(env) {
        Ok(c) => c,
        Err(e) => return fail(Failed::invalid(e.to_string())),
    };
    let mut result = match execute(&client, &inv, &desired) {
        Ok(done) => {
            let mut result = serde_json::to_value(done).unwrap_or_default();
            add_invocation(&mut result, &inv.module_args, inv.settings);
            result
        }
        Err(f) => fail(*f),
    };
    result["api_requests"] = json!(client.stats());
    result
}

/// What a run that did not fail printed.
#[derive(Debug, Serialize)]
struct Done {
    changed: bool,
    created: bool,
    deleted: bool,
    /// The volume as it ends up (in check mode: as it would).
    volume: Option<VolumeView>,
    actions: Vec<String>,
    msg: String,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<VolumeDiff>,
}

fn execute(client: &Client, inv: &Invocation<Params>, d: &Desired) -> Result<Done, Box<Failed>> {
    let refused = |r: Refusal| Box::new(Failed::refused(&r));
    let observed = observe::observe(client, d).map_err(refused)?;
    let plan = plan::plan(d, &observed).map_err(refused)?;
    let check = inv.settings.mode.is_check();
    let mut warnings = inv.warnings.clone();
    warnings.extend(plan.warnings.iter().cloned());
    let texts: Vec<String> = plan.steps.iter().map(|s| s.text.clone()).collect();
    let changed = !plan.steps.is_empty();
    let volume = if check || !changed {
        plan.after.clone()
    } else {
        match finish(client, d, inv.params.wait, &plan) {
            Ok((view, applied_warnings)) => {
                warnings.extend(applied_warnings);
                view
            }
            Err(f) => return Err(Box::new(failed_step(&f))),
        }
    };
    let subject = plan
        .before
        .as_ref()
        .or(plan.after.as_ref())
        .map_or_else(|| d.label(), VolumeView::label);
    let msg = match (changed, check) {
        (false, _) if plan.before.is_none() && plan.after.is_none() => {
            format!("volume {subject} does not exist (no change)")
        }
        (false, _) => format!("volume {subject} is as requested (no change)"),
        (true, true) => format!("would {}", texts.join("; ")),
        (true, false) => texts.join("; "),
    };
    let has = |f: fn(&Step) -> bool| plan.steps.iter().any(|s| f(&s.step));
    Ok(Done {
        changed,
        created: has(|s| matches!(s, Step::Create { .. })),
        deleted: has(|s| matches!(s, Step::Delete { .. })),
        volume,
        actions: texts,
        msg,
        warnings,
        diff: inv
            .settings
            .diff
            .then(|| VolumeDiff::of(&plan.before, &plan.after, &subject)),
    })
}

/// Applies the plan, waits for its last actions (with `wait`) and reads the
/// volume as it ends up.
fn finish(
    client: &Client,
    d: &Desired,
    wait: bool,
    plan: &Plan,
) -> Result<(Option<VolumeView>, Vec<String>), Box<apply::Failure>> {
    let before = plan.before.as_ref().and_then(|v| v.id);
    let subject = plan.before.as_ref().or(plan.after.as_ref());
    let volume = subject.map_or_else(|| d.name.clone().unwrap_or_default(), |v| v.name.clone());
    // Servers this module knows by name: the one it read and the target.
    let known: Vec<(i64, String)> = [&plan.before, &plan.after]
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v.server?, v.server_name.clone()?)))
        .collect();
    let server_name = |id: i64| {
        let name = known.iter().find(|(k, _)| *k == id).map(|(_, n)| n.clone());
        name.or_else(|| client.get_server(id).ok().flatten().map(|s| s.name))
            .unwrap_or_else(|| format!("server {id}"))
    };
    let ctx = apply::Ctx {
        client,
        journal: None,
        host: "",
        volume: &volume,
        server_name: &server_name,
    };
    let applied = apply::apply(&ctx, before, &plan.steps)?;
    let last = applied.done.last().cloned().unwrap_or_default();
    let earlier = &applied.done[..applied.done.len().saturating_sub(1)];
    let view = match (applied.id, &plan.after) {
        (Some(id), Some(after)) if wait => {
            let actions: Vec<_> = applied.pending.iter().map(|p| p.action.clone()).collect();
            client
                .wait_for(&actions, Duration::MAX)
                .map_err(|e| apply::Failure::api(&last, e, earlier))?;
            let fresh = client
                .get_volume(id)
                .map_err(|e| apply::Failure::api("read the result", e, &applied.done))?;
            fresh.map(|v| VolumeView::of(&v, after.server_name.clone()))
        }
        (Some(id), Some(after)) => Some(VolumeView {
            id: Some(id),
            ..after.clone()
        }),
        _ => None,
    };
    Ok((view, applied.warnings))
}

/// A failed step, with the steps done before it.
fn failed_step(f: &apply::Failure) -> Failed {
    let mut msg = f.msg.clone();
    if !f.done.is_empty() && f.rerun_finishes {
        msg = format!(
            "{}. Done before the failure: {}. Rerun the task to finish",
            msg.trim_end_matches('.'),
            f.done.join("; ")
        );
    }
    // The steps before the failure did change the volume.
    Failed::new(msg, f.details(), !f.done.is_empty())
}

/// The JSON Schema of the options (for `kbv3_volume --schema`).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Params)).unwrap_or_default()
}
