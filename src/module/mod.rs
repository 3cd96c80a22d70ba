//! The `kbv3_volume` Ansible module: parse the options ([`params`]), read the
//! current state ([`observe`]), plan the steps ([`plan`], pure), and either
//! report the plan (check mode) or carry it out ([`apply`]). [`run`] is the
//! one place that looks at check mode.

pub mod apply;
pub mod binary;
pub mod failure;
pub mod guard;
pub mod observe;
pub mod params;
pub mod plan;
pub mod reviewed;

use serde_json::{json, Map, Value};

use std::time::Duration;

use crate::hcloud::{Client, Config, Environment};

use failure::{Code, Refusal};
use params::{Invocation, Params, Settings};
use plan::{Plan, Step, VolumeView};

/// Runs the module on the args JSON, with the API settings of the
/// environment; returns the result object. `failed: true` and
/// `failure.code` are set on any failure; the token never appears.
pub fn run(args: &Value, env: &Environment) -> Value {
    let inv = match params::parse(args) {
        Ok(inv) => inv,
        Err(msg) => {
            return Failed::refused(Refusal::new(Code::InvalidArgument, msg)).into_result(
                &Map::new(),
                Settings::default(),
                &[],
            )
        }
    };
    let refused =
        |r: Refusal| Failed::refused(r).into_result(&inv.module_args, inv.settings, &inv.warnings);
    let params = match reviewed::bind(&inv.params, inv.settings.check_mode) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let client = match run_client(
        RunClient {
            token: params.api_token.clone(),
            endpoint: params.api_endpoint.clone(),
            allow_insecure_http: params.allow_insecure_http,
            wait_timeout: params.wait_timeout,
            request_timeout: params.request_timeout,
            in_flight: 0,
        },
        env,
    ) {
        Ok(c) => c,
        Err(e) => return refused(Refusal::new(Code::InvalidArgument, e.to_string())),
    };
    let mut result = match execute(&client, &inv, &params) {
        Ok(r) => r,
        Err(f) => f.into_result(&inv.module_args, inv.settings, &inv.warnings),
    };
    result["api_requests"] = json!(client.stats());
    result
}

fn execute(client: &Client, inv: &Invocation, p: &Params) -> Result<Value, Failed> {
    let observed = observe::observe(client, p).map_err(Failed::refused)?;
    let plan = plan::plan(p, &observed).map_err(Failed::refused)?;
    let mut warnings = inv.warnings.clone();
    warnings.extend(plan.warnings.iter().cloned());
    let texts: Vec<String> = plan.steps.iter().map(|s| s.text.clone()).collect();
    let changed = !plan.steps.is_empty();
    let volume = if inv.settings.check_mode || !changed {
        plan.after.clone()
    } else {
        match finish(client, p, &plan) {
            Ok((view, applied_warnings)) => {
                warnings.extend(applied_warnings);
                view
            }
            Err(f) => return Err(Failed::from_failure(&f)),
        }
    };
    let subject = plan.before.as_ref().or(plan.after.as_ref()).map_or_else(
        || {
            p.name
                .clone()
                .unwrap_or_else(|| p.id.unwrap_or_default().to_string())
        },
        VolumeView::label,
    );
    let msg = match (changed, inv.settings.check_mode) {
        (false, _) if plan.before.is_none() && plan.after.is_none() => {
            format!("volume {subject} does not exist (no change)")
        }
        (false, _) => format!("volume {subject} is as requested (no change)"),
        (true, true) => format!("would {}", texts.join("; ")),
        (true, false) => texts.join("; "),
    };
    let has = |f: fn(&Step) -> bool| plan.steps.iter().any(|s| f(&s.step));
    let mut result = json!({
        "changed": changed,
        "created": has(|s| matches!(s, Step::Create { .. })),
        "deleted": has(|s| matches!(s, Step::Delete { .. })),
        "volume": volume,
        "actions": texts,
        "msg": msg,
        "warnings": warnings,
    });
    if inv.settings.diff {
        result["diff"] = diff(&plan, &subject);
    }
    add_invocation(&mut result, &inv.module_args, inv.settings);
    Ok(result)
}

/// Applies the plan, waits for its last actions (with `wait`) and reads the
/// volume as it ends up.
fn finish(
    client: &Client,
    p: &Params,
    plan: &Plan,
) -> Result<(Option<VolumeView>, Vec<String>), Box<apply::Failure>> {
    let before = plan.before.as_ref().and_then(|v| v.id);
    let subject = plan.before.as_ref().or(plan.after.as_ref());
    let volume = subject.map_or_else(|| p.name.clone().unwrap_or_default(), |v| v.name.clone());
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
        (Some(id), Some(after)) if p.wait => {
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

/// The `diff` of the result: user-visible attributes before and after.
fn diff(plan: &Plan, subject: &str) -> Value {
    let view = |v: &Option<VolumeView>| v.as_ref().map_or(json!({}), VolumeView::diff_view);
    json!({
        "before": view(&plan.before),
        "after": view(&plan.after),
        "before_header": format!("volume {subject} (before)"),
        "after_header": format!("volume {subject} (after)"),
    })
}

/// What a module run's API client is made of.
pub(crate) struct RunClient {
    pub token: Option<String>,
    pub endpoint: Option<String>,
    pub allow_insecure_http: bool,
    /// Seconds for the whole run.
    pub wait_timeout: i64,
    /// Seconds for one request.
    pub request_timeout: i64,
    /// Requests this run may have in flight at once beyond one.
    pub in_flight: u64,
}

/// The client of a module run: one deadline for the whole run (every
/// request, retry and wait fits in `wait_timeout`), and pacing that keeps
/// room for every request in flight.
pub(crate) fn run_client(c: RunClient, env: &Environment) -> Result<Client, crate::hcloud::Error> {
    let cfg = Config::resolve(c.token, c.endpoint, c.allow_insecure_http, env)?;
    Client::new(Config {
        deadline: Some(Duration::from_secs(c.wait_timeout as u64)),
        request_timeout: Duration::from_secs(c.request_timeout as u64),
        pace_below: cfg.pace_below + c.in_flight,
        ..cfg
    })
}

/// Adds `invocation.module_args`, unless the run is `no_log`.
pub(crate) fn add_invocation(
    result: &mut Value,
    module_args: &Map<String, Value>,
    settings: Settings,
) {
    if !settings.no_log {
        result["invocation"] = json!({ "module_args": module_args });
    }
}

/// A failed run: the message, the `failure` object, and whether anything changed first.
struct Failed {
    msg: String,
    failure: Value,
    changed: bool,
}

impl Failed {
    /// A failed step, with the steps done before it.
    fn from_failure(f: &apply::Failure) -> Self {
        let mut msg = f.msg.clone();
        if !f.done.is_empty() && f.rerun_finishes {
            msg = format!(
                "{}. Done before the failure: {}. Rerun the task to finish",
                msg.trim_end_matches('.'),
                f.done.join("; ")
            );
        }
        Failed {
            msg,
            failure: f.details(),
            // The steps before the failure did change the volume.
            changed: !f.done.is_empty(),
        }
    }

    /// A failure before any change (bad options, a lookup, a refusal).
    fn refused(r: Refusal) -> Self {
        Failed {
            failure: json!({ "code": r.code, "message": r.msg }),
            msg: r.msg,
            changed: false,
        }
    }

    fn into_result(
        self,
        module_args: &Map<String, Value>,
        settings: Settings,
        warnings: &[String],
    ) -> Value {
        let mut result = json!({ "failed": true, "changed": self.changed, "msg": self.msg,
                                 "failure": self.failure, "warnings": warnings });
        add_invocation(&mut result, module_args, settings);
        result
    }
}

/// The JSON Schema of the options (for `kbv3_volume --schema`).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(params::Params)).unwrap_or_default()
}
