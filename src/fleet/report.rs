//! The PH3-02 record: every real run appends one entry to
//! `ph3_02_report.json` (the history is never rewritten) and the readable
//! `ph3_02_report.md` is regenerated from all of them. The playbook hands
//! over the run's facts ([`RunFacts`]); what each host had deleted, created,
//! left alone or failed comes from the `kbv3_volumes` result in them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil::{write_atomic, write_json_atomic};

/// What the playbook knows at the end of a run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFacts {
    pub confirmation_code: String,
    pub diff: String,
    pub diff_generated_at: String,
    /// The hosts of the run.
    pub hosts: Vec<String>,
    pub mountpoints: BTreeMap<String, Option<String>>,
    /// Hosts that failed, and where.
    pub host_failures: BTreeMap<String, String>,
    /// The `kbv3_volumes` result: `hosts`, `totals`, `api_requests`.
    pub api: Value,
}

/// One run, as recorded.
#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub finished_at: String,
    pub confirmation_code: String,
    pub diff: String,
    pub diff_generated_at: String,
    pub hosts: BTreeMap<String, HostRecord>,
    pub totals: Value,
    pub api_requests: Value,
}

/// What happened on one host.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HostRecord {
    pub deleted: Vec<VolumeRecord>,
    pub created: Option<VolumeRecord>,
    pub left_alone: Vec<LeftAlone>,
    pub failed: Option<String>,
}

/// A volume as the report shows it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub id: Option<i64>,
    pub name: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub former_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
}

/// A volume left alone, and why.
#[derive(Debug, Serialize, Deserialize)]
pub struct LeftAlone {
    pub name: String,
    pub why: String,
}

/// Turns the run's facts into its record.
pub fn record(facts: &RunFacts, finished_at: String) -> Run {
    let api_hosts = &facts.api["hosts"];
    let volume = |v: &Value| VolumeRecord {
        id: v["id"].as_i64(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        size: v["size"].as_u64().unwrap_or_default(),
        ..VolumeRecord::default()
    };
    let hosts = facts
        .hosts
        .iter()
        .map(|h| {
            let a = &api_hosts[h];
            let deleted = a["deleted"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| VolumeRecord {
                    former_server: v["server_name"].as_str().map(str::to_string),
                    ..volume(v)
                })
                .collect();
            let created = (a["created"] == true).then(|| VolumeRecord {
                device: a["volume"]["linux_device"].as_str().map(str::to_string),
                mountpoint: facts.mountpoints.get(h).cloned().flatten(),
                ..volume(&a["volume"])
            });
            let left_alone = a["stale"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| LeftAlone {
                    name: s["volume"]["name"].as_str().unwrap_or_default().to_string(),
                    why: s["msg"].as_str().unwrap_or_default().to_string(),
                })
                .collect();
            let record = HostRecord {
                deleted,
                created,
                left_alone,
                failed: facts.host_failures.get(h).cloned(),
            };
            (h.clone(), record)
        })
        .collect();
    Run {
        finished_at,
        confirmation_code: facts.confirmation_code.clone(),
        diff: facts.diff.clone(),
        diff_generated_at: facts.diff_generated_at.clone(),
        hosts,
        totals: facts.api["totals"].clone(),
        api_requests: facts.api["api_requests"].clone(),
    }
}

/// Appends `run` to the JSON history at `json_path` and rewrites the
/// Markdown at `md_path` from the whole history. A history file that is not
/// one is left as it is, with an error saying so.
pub fn append(json_path: &Path, md_path: &Path, run: Run) -> Result<usize> {
    let mut runs: Vec<Run> = match std::fs::read(json_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "{}:{}: not a PH3-02 report ({e}); it was left as it is. Move it away and record the run again.",
                json_path.display(),
                e.line()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", json_path.display())),
    };
    runs.push(run);
    write_json_atomic(json_path, &runs)?;
    write_atomic(md_path, markdown(&runs).as_bytes())?;
    Ok(runs.len())
}

/// The readable report: one section per run, newest last.
pub fn markdown(runs: &[Run]) -> String {
    let mut out = String::from("# PH3-02 report\n\nOne section per real run of `playbooks/ph3-02.yml`, oldest first (generated from ph3_02_report.json).\n");
    for (i, run) in runs.iter().enumerate() {
        let t = &run.totals;
        let n = |k: &str| t[k].as_u64().unwrap_or_default();
        let _ = write!(
            out,
            "\n## Run {} — {}\n\n- Diff: `{}` (generated {}), confirmation code `{}`\n\
             - Created {} volumes ({} GB), fixed {}, already ok {}, deleted {} volumes ({} GB), \
             stale (left alone) {}, failed hosts {}\n- API requests: {}\n\n\
             | host | deleted | created | left alone | failed |\n|---|---|---|---|---|\n",
            i + 1,
            run.finished_at,
            run.diff,
            run.diff_generated_at,
            run.confirmation_code,
            n("created"),
            n("created_gb"),
            n("fixed"),
            n("ok"),
            n("deleted"),
            n("deleted_gb"),
            n("stale"),
            run.hosts.values().filter(|h| h.failed.is_some()).count(),
            run.api_requests["requests"],
        );
        for (host, h) in &run.hosts {
            let deleted: Vec<String> = h
                .deleted
                .iter()
                .map(|v| {
                    format!(
                        "{} ({}, {} GB, from {})",
                        v.name,
                        v.id.unwrap_or_default(),
                        v.size,
                        v.former_server.as_deref().unwrap_or("no server")
                    )
                })
                .collect();
            let created = h.created.as_ref().map_or(String::new(), |v| {
                format!(
                    "{} ({}, {} GB, {} at {})",
                    v.name,
                    v.id.unwrap_or_default(),
                    v.size,
                    v.device.as_deref().unwrap_or("?"),
                    v.mountpoint.as_deref().unwrap_or("?")
                )
            });
            let left: Vec<String> = h
                .left_alone
                .iter()
                .map(|l| format!("{}: {}", l.name, l.why))
                .collect();
            let _ = writeln!(
                out,
                "| {host} | {} | {created} | {} | {} |",
                cell(&deleted.join("; ")),
                cell(&left.join("; ")),
                cell(h.failed.as_deref().unwrap_or(""))
            );
        }
    }
    out
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> RunFacts {
        serde_json::from_value(json!({
            "confirmation_code": "abc123abc123", "diff": "/x/volume_diff_v3.json", "diff_generated_at": "t0",
            "hosts": ["web-01", "db-01"],
            "mountpoints": {"web-01": "/data/web", "db-01": "/data/db"},
            "host_failures": {"db-01": "Mount by UUID: no device"},
            "api": {"hosts": {
                "web-01": {"created": true, "volume": {"id": 9, "name": "kbv3-web-01-data", "size": 20, "linux_device": "/dev/sdb"},
                           "deleted": [{"id": 3, "name": "vol-web-01", "size": 10, "server_name": "web-01"}], "stale": []},
                "db-01": {"created": false, "volume": null, "deleted": [],
                          "stale": [{"volume": {"name": "vol-db|01"}, "msg": "the plan is stale"}]}},
              "totals": {"created": 1, "created_gb": 20, "deleted": 1, "deleted_gb": 10}, "api_requests": {"requests": {"GET": 4}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_run_records_each_host() {
        let run = record(&facts(), "t1".into());
        let web = &run.hosts["web-01"];
        assert_eq!(web.deleted[0].former_server.as_deref(), Some("web-01"));
        let created = web.created.as_ref().unwrap();
        assert_eq!(
            (
                created.id,
                created.device.as_deref(),
                created.mountpoint.as_deref()
            ),
            (Some(9), Some("/dev/sdb"), Some("/data/web"))
        );
        assert_eq!(
            run.hosts["db-01"].failed.as_deref(),
            Some("Mount by UUID: no device")
        );
        assert_eq!(run.hosts["db-01"].left_alone[0].why, "the plan is stale");
    }

    #[test]
    fn runs_are_appended_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (json_path, md) = (dir.path().join("r.json"), dir.path().join("r.md"));
        assert_eq!(
            append(&json_path, &md, record(&facts(), "t1".into())).unwrap(),
            1
        );
        assert_eq!(
            append(&json_path, &md, record(&facts(), "t2".into())).unwrap(),
            2
        );
        let text = std::fs::read_to_string(&md).unwrap();
        assert!(text.contains("## Run 1 — t1") && text.contains("## Run 2 — t2"));
        assert!(text.contains("vol-db\\|01: the plan is stale"), "{text}");
        std::fs::write(&json_path, "{not json").unwrap();
        let err = append(&json_path, &md, record(&facts(), "t3".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.json:1: not a PH3-02 report"), "{err}");
        assert_eq!(std::fs::read_to_string(&json_path).unwrap(), "{not json");
    }
}
