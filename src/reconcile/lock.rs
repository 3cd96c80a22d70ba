//! Host locks in the state directory (`locks/<host>.lock`): before its first
//! mutating request a run locks every host it will change (the orphans'
//! pseudo-host included). A run whose hosts overlap a running one's stops
//! at once, changing nothing, and says who holds the lock; runs over
//! disjoint hosts (AWX job slices, disjoint `--limit`s) go side by side.
//!
//! The locks are `flock`s held by the module's process: the kernel drops
//! them when it ends, however it ends, so the lock of a dead run is free
//! again and never needs to be broken by hand. The file only tells who
//! holds it.

use std::collections::BTreeSet;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run: String,
    pub pid: u32,
    /// The machine's host name.
    pub machine: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} (pid {} on {}, since {})",
            self.run, self.pid, self.machine, self.since
        )
    }
}

/// The name of this machine, for lock files and the journal.
pub fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

/// The locks a run holds; dropped (released) with it.
#[derive(Debug)]
pub struct HostLocks {
    _files: Vec<File>,
}

/// Locks every host of `hosts` in `dir/locks`, all or none. A host that
/// another run holds fails the whole call, naming the holder.
///
/// # Errors
/// A host locked by another live run (naming it and the run), or a state directory that cannot hold the locks.
pub fn acquire(dir: &Path, hosts: &[String], me: &Holder) -> Result<HostLocks, String> {
    let locks = dir.join("locks");
    std::fs::create_dir_all(&locks).map_err(|e| {
        format!(
            "cannot create the lock folder {}: {e}. The state directory (kbv3_state_dir) must be writable; nothing was changed",
            locks.display()
        )
    })?;
    let wanted: BTreeSet<&String> = hosts.iter().collect();
    let mut files = Vec::with_capacity(wanted.len());
    for host in wanted {
        let path = locks.join(format!("{}.lock", file_name(host)));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot open the lock {}: {e}; nothing was changed",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str::<Holder>(&text)
                    .map_or_else(|_| "another run (starting)".to_string(), |h| h.to_string());
                return Err(format!(
                    "host {host} is locked by {holder}: another PH3-02 run is changing it. Nothing was changed. \
                     Wait for that run to finish, or select hosts it does not hold (--limit)"
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!(
                    "cannot lock {}: {e}; nothing was changed",
                    path.display()
                ))
            }
        }
        let text = serde_json::to_string(me).unwrap_or_default();
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| {
                format!(
                    "cannot write the lock {}: {e}; nothing was changed",
                    path.display()
                )
            })?;
        files.push(file);
    }
    Ok(HostLocks { _files: files })
}

/// A host name as a file name: anything but letters, digits, `.`, `_`
/// and `-` becomes `_`.
fn file_name(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str) -> Holder {
        Holder {
            run: run.into(),
            pid: 42,
            machine: "ctl".into(),
            since: "2026-11-30T10:00:00Z".into(),
        }
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlapping_runs_refuse_disjoint_runs_proceed() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), &hosts(&["web-01", "db-01"]), &holder("a")).unwrap();
        let err = acquire(dir.path(), &hosts(&["db-01", "zz-01"]), &holder("b")).unwrap_err();
        assert!(
            err.starts_with(
                "host db-01 is locked by run a (pid 42 on ctl, since 2026-11-30T10:00:00Z)"
            ),
            "{err}"
        );
        // All or none: b took nothing, so a third run can take zz-01.
        let c = acquire(dir.path(), &hosts(&["zz-01"]), &holder("c")).unwrap();
        drop((a, c));
        // Released with their holders.
        acquire(
            dir.path(),
            &hosts(&["web-01", "db-01", "zz-01"]),
            &holder("d"),
        )
        .unwrap();
    }

    #[test]
    fn host_names_are_safe_file_names() {
        assert_eq!(file_name("web-01.example_x"), "web-01.example_x");
        assert_eq!(file_name("../etc/passwd"), ".._etc_passwd");
    }
}
