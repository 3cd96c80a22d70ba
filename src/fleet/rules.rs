//! The role rules (`volume_rules_v3.tsv`): for each role_v3, its volume class
//! and size. The mountpoint is `/data/<class>` with `-` turned into `_`.
//! Adding a role is a change to this file only.

use std::collections::BTreeMap;
use std::path::Path;

use crate::hcloud::rules::check_volume_size;

use super::table::{self, LineError, Problems};

/// Columns of the rules file.
pub const COLUMNS: [&str; 3] = ["ROLE_V3", "VOLUME_CLASS", "SIZE_GB"];

/// What a role gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRule {
    pub role: String,
    pub class: String,
    pub size_gb: u32,
}

impl RoleRule {
    /// `/data/<class>`, with `-` as `_`.
    pub fn mountpoint(&self) -> String {
        format!("/data/{}", self.class.replace('-', "_"))
    }
}

/// Every role's rule, by role name.
pub type Rules = BTreeMap<String, RoleRule>;

/// Reads and checks the rules file.
pub fn load(path: &Path) -> Result<Rules, Problems> {
    let bytes = table::read_bytes(path)?;
    parse(path, &bytes)
}

/// Parses and checks rules: names of `[a-z0-9_-]`, sizes within the API's
/// limits, no role twice.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Rules, Problems> {
    let rows = table::parse(path, bytes, &COLUMNS)?;
    let mut rules = Rules::new();
    let mut problems = Vec::new();
    let mut first_line = BTreeMap::new();
    for row in rows {
        let mut bad = |message: String| {
            problems.push(LineError {
                file: path.to_path_buf(),
                line: row.line,
                message,
            })
        };
        let (role, class, size) = (
            row.get("ROLE_V3"),
            row.get("VOLUME_CLASS"),
            row.get("SIZE_GB"),
        );
        for (column, value) in [("ROLE_V3", role), ("VOLUME_CLASS", class)] {
            if value.is_empty() {
                bad(format!("empty {column}"));
            } else if !value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                bad(format!(
                    "{column} '{value}' may contain only a-z, 0-9, '-' and '_'"
                ));
            }
        }
        let size_gb = match size.parse::<i64>() {
            Ok(n) => match check_volume_size(n) {
                Ok(()) => n as u32,
                Err(e) => {
                    bad(format!("SIZE_GB {e}"));
                    continue;
                }
            },
            Err(_) => {
                bad(format!("SIZE_GB '{size}' is not a whole number of GB"));
                continue;
            }
        };
        if let Some(first) = first_line.insert(role.to_string(), row.line) {
            bad(format!(
                "role '{role}' is defined twice (first on line {first})"
            ));
        }
        rules.insert(
            role.to_string(),
            RoleRule {
                role: role.into(),
                class: class.into(),
                size_gb,
            },
        );
    }
    Problems::or_ok(problems, rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_derives_the_mountpoint() {
        let rules = parse(Path::new("r.tsv"), b"ROLE_V3\tVOLUME_CLASS\tSIZE_GB\nlb-apigw\tapps_misc\t20\ndb-postgres\tdb-postgres\t100\n").unwrap();
        assert_eq!(rules["db-postgres"].mountpoint(), "/data/db_postgres");
        assert_eq!(rules["lb-apigw"].mountpoint(), "/data/apps_misc");
    }

    #[test]
    fn reports_every_bad_rule() {
        let text =
            "ROLE_V3\tVOLUME_CLASS\tSIZE_GB\nA\tx\t20\nb\tx\tlots\nc\tx\t5\nd\t\t20\nd\tx\t20\n";
        let err = parse(Path::new("r.tsv"), text.as_bytes())
            .unwrap_err()
            .to_string();
        let want = "r.tsv:2: ROLE_V3 'A' may contain only a-z, 0-9, '-' and '_'\n\
                    r.tsv:3: SIZE_GB 'lots' is not a whole number of GB\n\
                    r.tsv:4: SIZE_GB must be between 10 and 10240 (GB), got 5\n\
                    r.tsv:5: empty VOLUME_CLASS\n\
                    r.tsv:6: role 'd' is defined twice (first on line 5)";
        assert_eq!(err, want);
    }
}
