//! Reading tab-separated files with a header row.
//!
//! Parsing is separate from opening the file so tests can feed bytes. A UTF-8
//! byte-order mark, CRLF line ends and blank lines are tolerated; every other
//! problem is collected, one per line, instead of stopping at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem at one line of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// Several problems, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<LineError>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Problems {}

/// One data row: its line number and its fields by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub fields: BTreeMap<String, String>,
}

impl Row {
    /// A field's value, trimmed ("" when missing).
    pub fn get(&self, column: &str) -> &str {
        self.fields.get(column).map_or("", |v| v.trim())
    }
}

/// Reads a whole file; a failure is a problem naming the file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Problems> {
    crate::fsutil::read_bounded(path, crate::fsutil::MAX_TABLE_BYTES).map_err(|e| {
        Problems(vec![LineError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the file: {e}"),
        }])
    })
}

impl Problems {
    /// `value` when there are no problems, else the problems.
    pub fn or_ok<T>(problems: Vec<LineError>, value: T) -> Result<T, Problems> {
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(Problems(problems))
        }
    }
}

/// Parses tab-separated `bytes` whose header must name every one of `columns`.
/// Rows with another number of fields than the header are reported.
pub fn parse(path: &Path, bytes: &[u8], columns: &[&str]) -> Result<Vec<Row>, Problems> {
    let err = |line: usize, message: String| LineError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // CRLF becomes LF, so the reader's byte offsets map onto lines simply.
    let bytes: Vec<u8> = bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| !(**b == b'\r' && bytes.get(i + 1) == Some(&b'\n')))
        .map(|(_, b)| *b)
        .collect();
    let bytes = bytes.as_slice();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .flexible(true)
        .quoting(false)
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
        Err(e) => {
            return Err(Problems(vec![err(
                1,
                format!("cannot read the header: {e}"),
            )]))
        }
    };
    let missing: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "the header must name the columns {} (tab-separated); missing: {}; found: {}",
            columns.join(", "),
            missing.join(", "),
            header.join(" | ")
        );
        return Err(Problems(vec![err(1, message)]));
    }
    // A record's offset is where the reader started, before any blank lines
    // it skipped; the record's own line is after them. Offsets only grow, so
    // newlines are counted incrementally.
    let (mut seen_until, mut newlines) = (0usize, 0usize);
    let mut line_at = |byte: u64| {
        let mut start = (byte as usize).min(bytes.len());
        while bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        if start >= seen_until {
            newlines += bytes[seen_until..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            seen_until = start;
        }
        1 + newlines
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                problems.push(err(line, format!("cannot read the line: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            problems.push(err(
                line,
                format!(
                    "expected {} tab-separated fields ({}), found {}; check for spaces used instead of tabs",
                    header.len(),
                    header.join(", "),
                    record.len()
                ),
            ));
            continue;
        }
        let fields = header
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        rows.push(Row { line, fields });
    }
    Problems::or_ok(problems, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Row>, Problems> {
        parse(Path::new("f.tsv"), text.as_bytes(), &["A", "B"])
    }

    #[test]
    fn bom_crlf_and_blank_lines_are_fine() {
        let rows = p("\u{feff}A\tB\r\nx\ty\r\n\r\nz\tw\r\n\n\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].line, rows[1].get("A")), (4, "z"));
    }

    #[test]
    fn every_bad_line_is_reported() {
        let err = p("A\tB\nx y\nok\tok\n1\t2\t3\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "f.tsv:2: expected 2 tab-separated fields (A, B), found 1; check for spaces used instead of tabs\n\
             f.tsv:4: expected 2 tab-separated fields (A, B), found 3; check for spaces used instead of tabs"
        );
    }

    #[test]
    fn missing_columns_name_what_was_found() {
        let err = p("A\tC\n1\t2\n").unwrap_err().to_string();
        assert_eq!(err, "f.tsv:1: the header must name the columns A, B (tab-separated); missing: B; found: A | C");
        assert!(p("").unwrap_err().to_string().contains("missing: A, B"));
    }
}
