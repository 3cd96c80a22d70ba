//! The run in the lines PH3-02's summary prints, so that the playbook shows
//! them instead of computing them in Jinja.

use crate::hcloud::client::Stats;
use crate::reconcile::failure::Code;
use crate::reconcile::Mode;

use super::results::{Results, Totals};

/// The summary lines of a run: its tallies, the stale volumes and refused
/// deletions by name and code, and its requests; `left_alone` is how many
/// volumes the reviewed diff leaves alone.
pub fn lines(r: &Results, stats: &Stats, mode: Mode, left_alone: usize) -> Vec<String> {
    let t = &r.totals;
    let (verb, ed, d) = if mode.is_check() {
        ("would ", "", "")
    } else {
        ("", "ed", "d")
    };
    let stale: Vec<&str> = r.stale().map(|v| v.name.as_str()).collect();
    let refused: Vec<&str> = r
        .refused_deletions()
        .into_iter()
        .map(Code::as_str)
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
            t.created, t.created_gb
        ),
        format!(
            "{verb}fix{ed}: {} volumes (attached, moved or grown)",
            t.fixed
        ),
        format!("already ok: {}", t.ok),
        format!(
            "{verb}delete{d}: {} legacy volumes, {} GB",
            t.deleted, t.deleted_gb
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
        format!("API requests: {}", requests(stats)),
    ]
}

/// The run in one line (the task's `msg`).
pub fn line(t: &Totals, mode: Mode) -> String {
    let verb = |now: &str, past: &str| {
        if mode.is_check() {
            format!("would {now}")
        } else {
            past.to_string()
        }
    };
    format!(
        "{} {} volumes ({} GB), {} {}, already ok {}, {} {} volumes ({} GB), stale (left alone) {}, failed {} on {} hosts",
        verb("create", "created"),
        t.created,
        t.created_gb,
        verb("fix", "fixed"),
        t.fixed,
        t.ok,
        verb("delete", "deleted"),
        t.deleted,
        t.deleted_gb,
        t.stale,
        t.failed,
        t.failed_hosts.len(),
    )
}

/// `45 (GET 40, POST 3, DELETE 2)`.
fn requests(stats: &Stats) -> String {
    if stats.requests.is_empty() {
        return "0".into();
    }
    let each: Vec<String> = stats
        .requests
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    format!("{} ({})", stats.total(), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::volumes::params::Kind;
    use crate::modules::volumes::results::VolumeResult;
    use crate::reconcile::failure::{Details, Refusal};

    fn entry(kind: Kind, name: &str, stale: bool, failed: Option<Code>) -> VolumeResult {
        VolumeResult {
            host: "h".into(),
            kind,
            name: name.into(),
            changed: false,
            failed: failed.is_some(),
            stale,
            created: false,
            deleted: false,
            volume: None,
            actions: vec![],
            msg: String::new(),
            warnings: vec![],
            failure: failed.map(|c| Details::refused(&Refusal::new(c, "no"))),
            diff: None,
        }
    }

    #[test]
    fn a_run_reads_as_the_playbook_prints_it() {
        let results = Results {
            volumes: vec![
                entry(Kind::Deletion, "vol-a", true, None),
                entry(Kind::Deletion, "vol-b", false, Some(Code::Protected)),
                entry(Kind::Volume, "kbv3-x-data", false, Some(Code::ApiError)),
            ],
            totals: Totals {
                created: 2,
                created_gb: 70,
                fixed: 1,
                ok: 3,
                deleted: 1,
                deleted_gb: 10,
                ..Totals::default()
            },
            not_ok: Default::default(),
            checks: Default::default(),
        };
        let stats = Stats {
            requests: [("GET".to_string(), 4), ("POST".to_string(), 2)].into(),
            retries: 0,
        };
        assert_eq!(
            lines(&results, &stats, Mode::Apply, 5),
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
            lines(&results, &stats, Mode::Check, 0)[0],
            "would create: 2 volumes, 70 GB"
        );
        let none = Results {
            volumes: vec![],
            totals: Totals::default(),
            not_ok: Default::default(),
            checks: Default::default(),
        };
        let empty = lines(&none, &Stats::default(), Mode::Check, 0);
        assert_eq!(
            (empty[4].as_str(), empty[7].as_str()),
            ("stale (left alone): 0", "API requests: 0")
        );
    }
}
