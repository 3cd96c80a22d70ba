//! The result of a fleet run: one entry per volume, one per host (what a
//! per-host task reads), and the run's tallies (what a summary prints).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::reconcile::plan::{Step, VolumeView};
use crate::reconcile::Mode;

use super::converge::{is_stale, name, Outcome};
use super::params::{Entry, Kind};

/// The results of every entry, host and the totals.
pub fn build(entries: &[Entry], outcomes: &[Outcome], mode: Mode, diff: bool) -> Value {
    let volumes: Vec<Value> = entries
        .iter()
        .zip(outcomes)
        .map(|(e, o)| entry_result(e, o, mode, diff))
        .collect();
    let mut hosts: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in &volumes {
        hosts.entry(str_of(v, "host")).or_default().push(v);
    }
    let hosts: serde_json::Map<String, Value> = hosts
        .into_iter()
        .map(|(h, vs)| (h, host_result(&vs)))
        .collect();
    let totals = totals(&volumes, &hosts);
    // Each host's (first) desired volume, found once rather than per host.
    let mut desired: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind == Kind::Volume) {
        desired.entry(e.host.as_str()).or_insert(e);
    }
    let mut checks = serde_json::Map::new();
    let mut not_ok = serde_json::Map::new();
    for (h, r) in &hosts {
        if let Some(msg) = refusal(r, desired.get(h.as_str()).copied(), mode) {
            not_ok.insert(h.clone(), msg.into());
        }
        let v = &r["volume"];
        if !v.is_null() {
            checks.insert(
                h.clone(),
                json!({ "device": v["linux_device"], "size": v["size"] }),
            );
        }
    }
    json!({ "volumes": volumes, "hosts": hosts, "checks": checks, "not_ok": not_ok, "totals": totals })
}

/// Why a host is not done, if it is not: something failed or was left
/// stale, or, in a real run, its volume is not attached to its server with
/// the size asked for. PH3-02's per-host check reads these (`not_ok`) and
/// its host side each volume's `device` and `size` (`checks`), two small
/// maps: Ansible pays for a variable's size each time a host's task
/// touches it, and the whole result is large.
fn refusal(host: &Value, desired: Option<&Entry>, mode: Mode) -> Option<String> {
    let stale = host["stale"].as_array().is_some_and(|s| !s.is_empty());
    if host["failed"] == true || stale {
        return Some(str_of(host, "msg"));
    }
    let e = desired.filter(|_| !mode.is_check())?;
    let v = &host["volume"];
    let server = e.desired.server.as_deref().unwrap_or_default();
    let size = e.desired.size.unwrap_or_default();
    if v["server_name"] == server && v["size"].as_u64() == Some(u64::from(size)) {
        return None;
    }
    let shows = if v.is_null() {
        "no volume".to_string()
    } else {
        format!(
            "{} GB attached to {}",
            v["size"],
            v["server_name"].as_str().unwrap_or("no server")
        )
    };
    Some(format!(
        "{}: expected attached to {server} with {size} GB, the API shows {shows}",
        e.desired.label()
    ))
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// True when the entry has (or, in check mode, would have) this step.
fn has(o: &Outcome, mode: Mode, f: fn(&Step) -> bool) -> bool {
    let Some(plan) = &o.plan else { return false };
    plan.steps
        .iter()
        .any(|s| f(&s.step) && (mode.is_check() || o.done.contains(&s.text)))
}

fn entry_result(e: &Entry, o: &Outcome, mode: Mode, diff: bool) -> Value {
    let planned: Vec<String> = o
        .plan
        .as_ref()
        .map(|p| p.steps.iter().map(|s| s.text.clone()).collect())
        .unwrap_or_default();
    let actions = if mode.is_check() {
        planned.clone()
    } else {
        o.done.clone()
    };
    let created = has(o, mode, |s| matches!(s, Step::Create { .. }));
    let deleted = if mode.is_check() {
        has(o, Mode::Check, |s| matches!(s, Step::Delete { .. }))
    } else {
        o.deleted
    };
    let subject = o.volume.as_ref().map_or_else(
        || match e.desired.id {
            Some(id) => format!("{} ({id})", name(e, o)),
            None => name(e, o),
        },
        VolumeView::label,
    );
    let msg = match (&o.failure, actions.is_empty(), mode.is_check()) {
        (Some(f), _, _) if o.done.is_empty() => f.msg.clone(),
        (Some(f), _, _) if f.rerun_finishes => format!(
            "{}. Done before the failure: {}. Rerun to finish (same code, no refresh needed)",
            f.msg.trim_end_matches('.'),
            o.done.join("; ")
        ),
        (Some(f), _, _) => format!("{} (done: {})", f.msg, o.done.join("; ")),
        (None, true, _) if o.volume.is_none() => {
            format!("volume {subject} does not exist (no change)")
        }
        (None, true, _) => format!("volume {subject} is as requested (no change)"),
        (None, false, true) => format!("would {}", actions.join("; ")),
        (None, false, false) => actions.join("; "),
    };
    let mut r = json!({
        "host": e.host,
        "kind": e.kind,
        "name": name(e, o),
        "changed": !actions.is_empty(),
        "failed": o.failure.is_some() && !is_stale(o),
        "stale": is_stale(o),
        "created": created,
        "deleted": deleted,
        "volume": o.volume,
        "actions": actions,
        "msg": msg,
        "warnings": o.warnings,
    });
    if let Some(f) = &o.failure {
        r["failure"] = json!(f.details());
    }
    if diff && !planned.is_empty() {
        let plan = o.plan.as_ref().expect("a plan with steps");
        let view = |v: &Option<VolumeView>| v.as_ref().map_or(json!({}), VolumeView::diff_view);
        r["diff"] = json!({
            "before": view(&plan.before),
            "after": view(&plan.after),
            "before_header": format!("volume {subject} (before)"),
            "after_header": format!("volume {subject} (after)"),
        });
    }
    r
}

/// One host: its volume (the first desired one), what was deleted, what was
/// left alone, and whether anything failed.
fn host_result(vs: &[&Value]) -> Value {
    let of_kind = |k: Kind| {
        let k = serde_json::to_value(k).unwrap_or_default();
        vs.iter().filter(move |v| v["kind"] == k)
    };
    let failed: Vec<&&Value> = vs.iter().filter(|v| v["failed"] == true).collect();
    let deleted: Vec<&Value> = of_kind(Kind::Deletion)
        .filter(|v| v["deleted"] == true)
        .map(|v| &v["volume"])
        .collect();
    let stale: Vec<Value> = vs
        .iter()
        .filter(|v| v["stale"] == true)
        .map(|v| json!({ "volume": v["volume"], "msg": v["msg"] }))
        .collect();
    let volume = of_kind(Kind::Volume).next().map(|v| &v["volume"]);
    let mut r = json!({
        "changed": vs.iter().any(|v| v["changed"] == true),
        "failed": !failed.is_empty(),
        "volume": volume,
        "created": of_kind(Kind::Volume).any(|v| v["created"] == true),
        "deleted": deleted,
        "stale": stale,
        "actions": vs.iter().flat_map(|v| v["actions"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
        "msg": if failed.is_empty() {
            vs.iter().map(|v| str_of(v, "msg")).collect::<Vec<_>>().join(" | ")
        } else {
            failed.iter().map(|v| str_of(v, "msg")).collect::<Vec<_>>().join(" | ")
        },
        "volumes": vs,
    });
    if let Some(f) = failed.first() {
        r["failure"] = f["failure"].clone();
    }
    r
}

fn totals(volumes: &[Value], hosts: &serde_json::Map<String, Value>) -> Value {
    let kind = |k: &'static str| volumes.iter().filter(move |v| v["kind"] == k);
    let size = |v: &Value| v["volume"]["size"].as_u64().unwrap_or_default();
    let created: Vec<&Value> = kind("volume").filter(|v| v["created"] == true).collect();
    let deleted: Vec<&Value> = kind("deletion").filter(|v| v["deleted"] == true).collect();
    let failed_hosts: Vec<&String> = hosts
        .iter()
        .filter(|(_, h)| h["failed"] == true)
        .map(|(name, _)| name)
        .collect();
    json!({
        "hosts": hosts.len(),
        "created": created.len(),
        "created_gb": created.iter().map(|v| size(v)).sum::<u64>(),
        "fixed": kind("volume").filter(|v| v["created"] == false && v["changed"] == true && v["failed"] == false).count(),
        "ok": kind("volume").filter(|v| v["changed"] == false && v["failed"] == false).count(),
        "deleted": deleted.len(),
        "deleted_gb": deleted.iter().map(|v| size(v)).sum::<u64>(),
        "stale": volumes.iter().filter(|v| v["stale"] == true).count(),
        "failed": volumes.iter().filter(|v| v["failed"] == true).count(),
        "failed_hosts": failed_hosts,
    })
}
