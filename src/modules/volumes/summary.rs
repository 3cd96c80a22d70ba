//! The run in the lines PH3-02's summary prints, so that the playbook shows
//! them instead of computing them in Jinja.

use serde_json::Value;

use crate::reconcile::Mode;

/// The summary lines of a run's result (`totals`, `volumes`, `api_requests`);
/// `left_alone` is how many volumes the reviewed diff leaves alone.
pub fn lines(result: &Value, mode: Mode, left_alone: usize) -> Vec<String> {
    let t = &result["totals"];
    let n = |k: &str| t[k].as_u64().unwrap_or_default();
    let (verb, ed, d) = if mode.is_check() {
        ("would ", "", "")
    } else {
        ("", "ed", "d")
    };
    let entries = result["volumes"].as_array().map_or(&[][..], Vec::as_slice);
    let stale: Vec<&str> = entries
        .iter()
        .filter(|v| v["stale"] == true)
        .filter_map(|v| v["name"].as_str())
        .collect();
    let refused: Vec<&str> = entries
        .iter()
        .filter(|v| v["kind"] == "deletion" && v["failed"] == true)
        .map(|v| v["failure"]["code"].as_str().unwrap_or("failed"))
        .collect();
    let listed = |items: &[&str], sep: &str| {
        if items.is_empty() {
            String::new()
        } else {
            format!(" ({})", items.join(sep))
        }
    };
    vec![
        format!(
            "{verb}create{d}: {} volumes, {} GB",
            n("created"),
            n("created_gb")
        ),
        format!(
            "{verb}fix{ed}: {} volumes (attached, moved or grown)",
            n("fixed")
        ),
        format!("already ok: {}", n("ok")),
        format!(
            "{verb}delete{d}: {} legacy volumes, {} GB",
            n("deleted"),
            n("deleted_gb")
        ),
        format!(
            "stale (left alone): {}{}",
            stale.len(),
            listed(&stale, ", ")
        ),
        format!(
            "deletions refused or failed: {}{}",
            refused.len(),
            listed(&refused, ", ")
        ),
        format!("left alone by the diff: {left_alone}"),
        format!(
            "API requests: {}",
            requests(&result["api_requests"]["requests"])
        ),
    ]
}

/// `45 (GET 40, POST 3, DELETE 2)`.
fn requests(by_method: &Value) -> String {
    let Some(m) = by_method.as_object().filter(|m| !m.is_empty()) else {
        return "0".into();
    };
    let total: u64 = m.values().filter_map(Value::as_u64).sum();
    let each: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{total} ({})", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::lines;
    use crate::reconcile::Mode;
    use serde_json::json;

    #[test]
    fn a_run_reads_as_the_playbook_prints_it() {
        let result = json!({
            "totals": {"created": 2, "created_gb": 70, "fixed": 1, "ok": 3, "deleted": 1, "deleted_gb": 10},
            "volumes": [
                {"kind": "deletion", "name": "vol-a", "stale": true, "failed": false},
                {"kind": "deletion", "name": "vol-b", "stale": false, "failed": true, "failure": {"code": "protected"}},
                {"kind": "volume", "name": "kbv3-x-data", "stale": false, "failed": true, "failure": {"code": "api_error"}},
            ],
            "api_requests": {"requests": {"GET": 4, "POST": 2}},
        });
        assert_eq!(
            lines(&result, Mode::Apply, 5),
            [
                "created: 2 volumes, 70 GB",
                "fixed: 1 volumes (attached, moved or grown)",
                "already ok: 3",
                "deleted: 1 legacy volumes, 10 GB",
                "stale (left alone): 1 (vol-a)",
                "deletions refused or failed: 1 (protected)",
                "left alone by the diff: 5",
                "API requests: 6 (GET 4, POST 2)",
            ]
        );
        assert_eq!(
            lines(&result, Mode::Check, 0)[0],
            "would create: 2 volumes, 70 GB"
        );
        let empty = lines(&json!({}), Mode::Check, 0);
        assert_eq!(
            (empty[4].as_str(), empty[7].as_str()),
            ("stale (left alone): 0", "API requests: 0")
        );
    }
}
