//! The PH3-02 journal (`ph3_02_journal.jsonl` in the state directory): one
//! JSON line before every mutating request (its intent) and one with its
//! outcome, each on disk before the next request. It is the record of what
//! kbv3 changed: the report is built from it, a later run finishes the
//! entries of a killed one from it, and the check before a DELETE reads
//! which detaches earlier runs made. Lines are appended under an exclusive
//! lock of the file, so concurrent runs never lose or tear one.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::fsutil::{read_bounded, MAX_JOURNAL_BYTES};

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "ph3_02_journal.jsonl";

/// A mutating request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    Resize,
    Detach,
    Attach,
    Protect,
    Delete,
}

/// What became of a mutating request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// The API accepted it; its action (`action_id`) runs.
    Accepted,
    /// The change took effect.
    Done,
    /// Nothing left to do: a DELETE answered 404 (already gone), a detach
    /// of a volume already detached. Never counted as this run's change.
    AlreadyDone,
    /// Refused or failed: nothing changed.
    Failed,
    /// Found later (a killed run's entry): the change did not happen.
    NotDone,
}

impl Fate {
    /// True when the change took effect.
    pub fn took_effect(self) -> bool {
        self == Fate::Done
    }
}

/// One request's intent: what, on which volume, for which host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub op: Op,
    pub host: String,
    pub volume: String,
    pub volume_id: Option<i64>,
    pub size_gb: Option<u32>,
    /// The server: detached from (detach), attached to (attach, create).
    pub server_id: Option<i64>,
    pub server: Option<String>,
    /// True for a change that undoes one the plan did not intend.
    #[serde(default)]
    pub undo: bool,
}

/// One line's event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run took its locks and is about to change things.
    Start {
        code: Option<String>,
        diff: Option<String>,
        hosts: Vec<String>,
        pid: u32,
        machine: String,
    },
    /// Written before the request.
    Intent {
        seq: u64,
        #[serde(flatten)]
        intent: Intent,
    },
    /// Written after it (again when its action finished).
    Outcome {
        seq: u64,
        result: Fate,
        #[serde(default)]
        action_id: Option<i64>,
        /// A created volume's id.
        #[serde(default)]
        volume_id: Option<i64>,
        /// The server the action touched (a detach: detached from).
        #[serde(default)]
        server_id: Option<i64>,
        #[serde(default)]
        detail: Option<String>,
    },
    /// A later run found an intent of a killed run without its outcome
    /// and read the API to learn it.
    Resolved {
        of_run: String,
        seq: u64,
        result: Fate,
        /// A created volume's id, when it was found.
        #[serde(default)]
        volume_id: Option<i64>,
        detail: String,
    },
    /// The run ended (a killed run has no such line).
    End {
        changed: bool,
        failed_hosts: Vec<String>,
    },
    /// The playbook's host side on one host.
    HostSide {
        host: String,
        device: Option<String>,
        mountpoint: Option<String>,
        failed: Option<String>,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub run: String,
    pub at: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The journal of one run, open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    run: String,
    file: Mutex<File>,
    seq: AtomicU64,
}

impl Journal {
    /// Opens (creates) the journal in `dir` for the run `run`.
    ///
    /// # Errors
    /// The journal file cannot be created or opened for appending.
    pub fn open(dir: &Path, run: &str) -> Result<Journal, String> {
        let path = dir.join(JOURNAL_FILE);
        std::fs::create_dir_all(dir)
            .and_then(|_| {
                File::options()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(&path)
            })
            .and_then(|file| end_torn_line(&file).map(|_| file))
            .map(|file| Journal {
                path: path.clone(),
                run: run.to_string(),
                file: Mutex::new(file),
                seq: AtomicU64::new(0),
            })
            .map_err(|e| {
                format!(
                    "cannot open the journal {}: {e}. The state directory (kbv3_state_dir) must be writable; nothing was changed",
                    path.display()
                )
            })
    }

    /// This run's id.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, on disk before this returns.
    ///
    /// # Errors
    /// The line cannot be written and synced.
    pub fn write(&self, event: Event) -> Result<(), String> {
        self.write_all(vec![event])
    }

    /// Appends events in one write, on disk before this returns.
    ///
    /// # Errors
    /// The lines cannot be written and synced.
    pub fn write_all(&self, events: Vec<Event>) -> Result<(), String> {
        let at = rfc3339(now_ms());
        let mut text = String::new();
        for event in events {
            let line = Line {
                run: self.run.clone(),
                at: at.clone(),
                event,
            };
            text.push_str(&serde_json::to_string(&line).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        let file = self.file.lock().expect("journal lock");
        append_locked(&file, text.as_bytes())
            .map_err(|e| format!("cannot write the journal {}: {e}", self.path.display()))
    }

    /// Records an intent; returns its number for the outcome.
    ///
    /// # Errors
    /// The intent cannot be written and synced (the change must then not be made).
    pub fn intent(&self, intent: Intent) -> Result<u64, String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.write(Event::Intent { seq, intent })?;
        Ok(seq)
    }
}

/// Ends a last line that a crash or a full disk cut short, so the next line
/// starts on a line of its own (the reader skips the torn one).
fn end_torn_line(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.lock()?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    let repaired = if len > 0 {
        file.read_exact_at(&mut last, len - 1).and_then(|_| {
            if last[0] == b'\n' {
                Ok(())
            } else {
                (&*file).write_all(b"\n")
            }
        })
    } else {
        Ok(())
    };
    let unlocked = file.unlock();
    repaired.and(unlocked)
}

/// Writes `bytes` in one write under an exclusive lock of the file, then
/// flushes them to disk.
fn append_locked(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    file.lock()?;
    let mut f = file;
    let written = f.write_all(bytes).and_then(|_| file.sync_data());
    let unlocked = file.unlock();
    written.and(unlocked)
}

/// Appends one line for `run` to the journal in `dir` (the report command's
/// host-side lines).
///
/// # Errors
/// The journal file cannot be opened or the line written.
pub fn append(dir: &Path, run: &str, event: Event) -> Result<(), String> {
    Journal::open(dir, run)?.write(event)
}

/// Reads every line of the journal in `dir` (none when there is no journal).
/// A last line without its newline (a write cut short) is skipped; any other
/// line that does not parse is an error naming the file and the line.
///
/// # Errors
/// The journal cannot be read, or a line is not an event (naming the file and line).
pub fn read(dir: &Path) -> Result<Vec<Line>, String> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = match read_bounded(&path, MAX_JOURNAL_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read the journal: {e}", path.display())),
    };
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        // A line cut short by a crash (then ended by the next open) is no record.
        .filter(|(_, l)| !is_torn(l))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                format!(
                    "{}:{}: not a journal line kbv3 wrote ({e}). The journal is the record of what PH3-02 changed: \
                     restore the line from a backup, or move the file aside to start a new record",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// True for a line cut short: valid JSON so far, but it ends early.
fn is_torn(line: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(line);
    matches!(
        serde::de::IgnoredAny::deserialize(&mut de),
        Err(e) if e.is_eof()
    )
}

/// The journal read back: every intent with what became of it.
#[derive(Debug, Default)]
pub struct History {
    pub entries: Vec<Entry>,
}

/// One intent of some run, and what became of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub run: String,
    pub seq: u64,
    pub at: String,
    pub intent: Intent,
    /// The last outcome, or the resolution a later run found.
    pub result: Option<Fate>,
    pub action_id: Option<i64>,
    /// A created volume's id, else the intent's.
    pub volume_id: Option<i64>,
    /// The server the action touched.
    pub touched_server: Option<i64>,
    pub detail: Option<String>,
    /// Set when a later run resolved it.
    pub resolved_by: Option<String>,
}

impl History {
    /// Joins intents with their outcomes and resolutions.
    pub fn of(lines: &[Line]) -> History {
        let mut entries: Vec<Entry> = Vec::new();
        let mut at: HashMap<(String, u64), usize> = HashMap::new();
        for line in lines {
            match &line.event {
                Event::Intent { seq, intent } => {
                    at.insert((line.run.clone(), *seq), entries.len());
                    entries.push(Entry {
                        run: line.run.clone(),
                        seq: *seq,
                        at: line.at.clone(),
                        intent: intent.clone(),
                        result: None,
                        action_id: None,
                        volume_id: intent.volume_id,
                        touched_server: None,
                        detail: None,
                        resolved_by: None,
                    });
                }
                Event::Outcome {
                    seq,
                    result,
                    action_id,
                    volume_id,
                    server_id,
                    detail,
                } => {
                    if let Some(e) = at.get(&(line.run.clone(), *seq)).map(|i| &mut entries[*i]) {
                        e.result = Some(*result);
                        e.action_id = action_id.or(e.action_id);
                        e.volume_id = volume_id.or(e.volume_id);
                        e.touched_server = server_id.or(e.touched_server);
                        e.detail = detail.clone().or(e.detail.take());
                    }
                }
                Event::Resolved {
                    of_run,
                    seq,
                    result,
                    volume_id,
                    detail,
                } => {
                    if let Some(e) = at.get(&(of_run.clone(), *seq)).map(|i| &mut entries[*i]) {
                        e.result = Some(*result);
                        e.volume_id = volume_id.or(e.volume_id);
                        e.detail = Some(detail.clone());
                        e.resolved_by = Some(line.run.clone());
                    }
                }
                Event::Start { .. } | Event::End { .. } | Event::HostSide { .. } => {}
            }
        }
        History { entries }
    }

    /// Entries whose request may or may not have taken effect: no outcome,
    /// or an accepted action whose end was never recorded.
    pub fn unfinished(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.result, None | Some(Fate::Accepted)))
    }

    /// The volumes a kbv3 run detached and no later kbv3 run attached
    /// again: volume id → the server it was detached from.
    pub fn detached_by_kbv3(&self) -> HashMap<i64, i64> {
        let mut out = HashMap::new();
        for e in self.entries.iter().filter(|e| e.result == Some(Fate::Done)) {
            let Some(id) = e.volume_id else { continue };
            match e.intent.op {
                Op::Detach => {
                    if let Some(server) = e.touched_server.or(e.intent.server_id) {
                        out.insert(id, server);
                    }
                }
                Op::Attach | Op::Delete => {
                    out.remove(&id);
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(op: Op, id: i64, server: Option<i64>) -> Intent {
        Intent {
            op,
            host: "web-01".into(),
            volume: format!("vol-{id}"),
            volume_id: Some(id),
            size_gb: Some(10),
            server_id: server,
            server: server.map(|s| format!("server-{s}")),
            undo: false,
        }
    }

    #[test]
    fn lines_round_trip_and_join_into_a_history() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), "run-1").unwrap();
        let detach = j.intent(intent(Op::Detach, 7, Some(1))).unwrap();
        let outcome = |seq, result, server_id| Event::Outcome {
            seq,
            result,
            action_id: Some(99),
            volume_id: None,
            server_id,
            detail: None,
        };
        j.write(outcome(detach, Fate::Accepted, Some(1))).unwrap();
        j.write(outcome(detach, Fate::Done, None)).unwrap();
        let reattached = j.intent(intent(Op::Detach, 8, Some(2))).unwrap();
        j.write(outcome(reattached, Fate::Done, Some(2))).unwrap();
        let undo = j.intent(intent(Op::Attach, 8, Some(2))).unwrap();
        j.write(outcome(undo, Fate::Done, None)).unwrap();
        let killed = j.intent(intent(Op::Delete, 9, None)).unwrap();
        let lines = read(dir.path()).unwrap();
        assert_eq!(lines.len(), 8);
        let h = History::of(&lines);
        assert_eq!(h.detached_by_kbv3(), HashMap::from([(7, 1)]));
        let open: Vec<u64> = h.unfinished().map(|e| e.seq).collect();
        assert_eq!(open, vec![killed]);
        // A later run resolves it.
        append(
            dir.path(),
            "run-2",
            Event::Resolved {
                of_run: "run-1".into(),
                seq: killed,
                result: Fate::Done,
                volume_id: None,
                detail: "gone".into(),
            },
        )
        .unwrap();
        let h = History::of(&read(dir.path()).unwrap());
        assert_eq!(h.unfinished().count(), 0);
        let e = h.entries.last().unwrap();
        assert_eq!(
            (e.result, e.resolved_by.as_deref()),
            (Some(Fate::Done), Some("run-2"))
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), "r").unwrap();
        j.intent(intent(Op::Delete, 1, None)).unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = File::options().append(true).open(&path).unwrap();
        f.write_all(b"{\"run\":\"r\",\"at").unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 1);
        // The next run's journal ends the torn line; both runs' lines read back.
        let next = Journal::open(dir.path(), "r2").unwrap();
        next.intent(intent(Op::Delete, 2, None)).unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 2);
        // A line that is whole but is not a journal line is named.
        f.write_all(b"{\"hello\": 1}\n").unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(
            err.contains(&format!("{}:4: not a journal line", path.display())),
            "{err}"
        );
    }

    #[test]
    fn concurrent_writers_lose_no_line() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for w in 0..8 {
                let dir = dir.path();
                s.spawn(move || {
                    let j = Journal::open(dir, &format!("run-{w}")).unwrap();
                    for i in 0..50 {
                        j.intent(intent(Op::Delete, i, None)).unwrap();
                    }
                });
            }
        });
        assert_eq!(read(dir.path()).unwrap().len(), 400);
    }
}
