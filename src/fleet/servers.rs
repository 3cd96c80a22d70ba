//! The rebuildable servers (`servers_v3.tsv`: HOSTNAME, IP_PRIVEE, ROLE_V3),
//! checked against the role rules. Adding a server is a change to this file only.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::hcloud::rules::check_volume_name;

use super::rules::Rules;
use super::table::{self, LineError, Problems};

/// Columns of the servers file.
pub const COLUMNS: [&str; 3] = ["HOSTNAME", "IP_PRIVEE", "ROLE_V3"];

/// One server of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub hostname: String,
    pub private_ip: Ipv4Addr,
    pub role: String,
}

impl Host {
    /// The name of its v3 volume: `kbv3-<hostname>-data`.
    pub fn volume_name(&self) -> String {
        volume_name(&self.hostname)
    }
}

/// `kbv3-<hostname>-data`.
pub fn volume_name(hostname: &str) -> String {
    format!("kbv3-{hostname}-data")
}

/// Reads and checks the servers file.
pub fn load(path: &Path, rules: &Rules) -> Result<Vec<Host>, Problems> {
    let bytes = table::read_bytes(path)?;
    parse(path, &bytes, rules)
}

/// Parses and checks servers: no empty field, a valid and unique IPv4, a
/// unique hostname that makes a valid volume name, a known role. Every
/// problem is reported, one per line.
pub fn parse(path: &Path, bytes: &[u8], rules: &Rules) -> Result<Vec<Host>, Problems> {
    let rows = table::parse(path, bytes, &COLUMNS)?;
    let mut hosts = Vec::new();
    let mut problems = Vec::new();
    let mut seen_hosts: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_ips: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    let known_roles = || rules.keys().cloned().collect::<Vec<_>>().join(", ");
    for row in rows {
        let mut line_problems = Vec::new();
        let (hostname, ip, role) = (
            row.get("HOSTNAME"),
            row.get("IP_PRIVEE"),
            row.get("ROLE_V3"),
        );
        for column in COLUMNS {
            if row.get(column).is_empty() {
                line_problems.push(format!("empty {column}"));
            }
        }
        if !hostname.is_empty() {
            if let Some(first) = seen_hosts.insert(hostname.to_string(), row.line) {
                line_problems.push(format!(
                    "duplicate hostname '{hostname}' (first on line {first})"
                ));
            }
            if let Err(e) = check_volume_name(&volume_name(hostname)) {
                line_problems.push(format!(
                    "hostname '{hostname}' makes the volume name '{}', which Hetzner refuses: it {e}",
                    volume_name(hostname)
                ));
            }
        }
        let parsed_ip = match ip.parse::<Ipv4Addr>() {
            Ok(addr) => {
                if let Some(first) = seen_ips.insert(addr, row.line) {
                    line_problems.push(format!(
                        "duplicate IP_PRIVEE {addr} (first on line {first})"
                    ));
                }
                Some(addr)
            }
            Err(_) if ip.is_empty() => None,
            Err(_) => {
                line_problems.push(format!("IP_PRIVEE '{ip}' is not a valid IPv4 address"));
                None
            }
        };
        if !role.is_empty() && !rules.contains_key(role) {
            line_problems.push(format!(
                "unknown role '{role}'; known roles: {}",
                known_roles()
            ));
        }
        if line_problems.is_empty() {
            if let Some(private_ip) = parsed_ip {
                hosts.push(Host {
                    hostname: hostname.into(),
                    private_ip,
                    role: role.into(),
                });
            }
        }
        problems.extend(line_problems.into_iter().map(|message| LineError {
            file: path.to_path_buf(),
            line: row.line,
            message,
        }));
    }
    Problems::or_ok(problems, hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::rules;

    fn rules() -> Rules {
        rules::parse(
            Path::new("r.tsv"),
            b"ROLE_V3\tVOLUME_CLASS\tSIZE_GB\nredis\tredis\t20\nminio\tminio\t200\n",
        )
        .unwrap()
    }

    fn parse_text(text: &str) -> Result<Vec<Host>, Problems> {
        parse(
            Path::new("servers/servers_v3.tsv"),
            text.as_bytes(),
            &rules(),
        )
    }

    #[test]
    fn good_file() {
        let hosts = parse_text(
            "HOSTNAME\tIP_PRIVEE\tROLE_V3\nredis-01\t10.0.0.1\tredis\nminio-01\t10.0.0.2\tminio\n",
        )
        .unwrap();
        assert_eq!(hosts[1].volume_name(), "kbv3-minio-01-data");
        assert_eq!(hosts[0].private_ip, Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn every_problem_is_reported_with_file_and_line() {
        let long = "x".repeat(60);
        let text = format!(
            "HOSTNAME\tIP_PRIVEE\tROLE_V3\n\
             redis-01\t10.0.0.1\tredis\n\
             redis-01\t10.0.0.2\tredis\n\
             minio-01\t10.0.0.1\tminio\n\
             db-01\t10.0.0.300\tdb-pg\n\
             \t10.0.0.5\tredis\n\
             {long}\t10.0.0.6\tredis\n"
        );
        let err = parse_text(&text).unwrap_err().to_string();
        let want = [
            "servers/servers_v3.tsv:3: duplicate hostname 'redis-01' (first on line 2)",
            "servers/servers_v3.tsv:4: duplicate IP_PRIVEE 10.0.0.1 (first on line 2)",
            "servers/servers_v3.tsv:5: IP_PRIVEE '10.0.0.300' is not a valid IPv4 address",
            "servers/servers_v3.tsv:5: unknown role 'db-pg'; known roles: minio, redis",
            "servers/servers_v3.tsv:6: empty HOSTNAME",
            &format!("servers/servers_v3.tsv:7: hostname '{long}' makes the volume name 'kbv3-{long}-data', which Hetzner refuses: it is 70 characters long; at most 64 are allowed"),
        ];
        assert_eq!(err, want.join("\n"));
    }
}
