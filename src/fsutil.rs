//! File helpers shared by the binaries.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// The largest fleet table (`servers_v3.tsv`, `volume_rules_v3.tsv`) kbv3 reads.
pub const MAX_TABLE_BYTES: u64 = 16 << 20;
/// The largest JSON document (plan, snapshot, diff, report, module args) kbv3 reads.
pub const MAX_JSON_BYTES: u64 = 64 << 20;
/// The largest PH3-02 journal kbv3 reads.
pub const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// Reads a whole file that must be a regular file of at most `limit` bytes:
/// a device (`/dev/zero`), a fifo or a folder is refused at once, and a file
/// that grows past the limit while it is read is refused too. The error
/// names the file and says what is wrong.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let refuse = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "not a regular file (a {}); give the path of a file",
            kind_of(&meta.file_type())
        )));
    }
    if meta.len() > limit {
        return Err(refuse(format!(
            "{} bytes, more than the {limit} bytes kbv3 reads from such a file",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refuse(format!(
            "grew past the {limit} bytes kbv3 reads from such a file while it was read"
        )));
    }
    Ok(bytes)
}

/// A file type in words.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "folder"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is
/// written, flushed to disk and renamed over the target, so a reader never
/// sees half a file and an interrupted run leaves the old file in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// `value` as pretty JSON with a trailing newline: the bytes the JSON files hold.
pub fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// Serialises `value` with [`json_bytes`] and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &json_bytes(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (case, path, limit, part of the error; None: read)
    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"12345").unwrap();
        let cases: Vec<(&str, &Path, u64, Option<&str>)> = vec![
            ("a small file", &small, 5, None),
            (
                "one byte over",
                &small,
                4,
                Some("5 bytes, more than the 4 bytes"),
            ),
            (
                "a device",
                Path::new("/dev/zero"),
                1 << 30,
                Some("not a regular file (a character device)"),
            ),
            (
                "a folder",
                dir.path(),
                1 << 30,
                Some("not a regular file (a folder)"),
            ),
            (
                "missing",
                Path::new("/nonexistent/kbv3"),
                1,
                Some("No such file"),
            ),
        ];
        for (case, path, limit, want) in cases {
            match (read_bounded(path, limit), want) {
                (Ok(bytes), None) => assert_eq!(bytes, b"12345", "{case}"),
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{case}: {e}"),
                (got, _) => panic!("{case}: {got:?}"),
            }
        }
    }
}
