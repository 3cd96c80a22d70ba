//! The PH3-01 plan: every server's target volume (pure).

use serde::{Deserialize, Serialize};

use super::rules::Rules;
use super::servers::Host;

/// The target volume of one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedVolume {
    pub hostname: String,
    pub role_v3: String,
    pub private_ip: String,
    pub volume_name: String,
    pub volume_class: String,
    pub size_gb: u32,
    pub mountpoint: String,
}

/// Totals of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTotals {
    pub servers: usize,
    pub volumes: usize,
    pub size_gb: u64,
}

/// The plan file (`volume_plan_v3.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub naming: String,
    pub volumes: Vec<PlannedVolume>,
    pub totals: PlanTotals,
}

/// Builds the plan, sorted by hostname. Every host's role must be in `rules`
/// (the servers file was checked against them).
pub fn build(hosts: &[Host], rules: &Rules) -> Plan {
    let mut volumes: Vec<PlannedVolume> = hosts
        .iter()
        .map(|h| {
            let rule = &rules[&h.role];
            PlannedVolume {
                hostname: h.hostname.clone(),
                role_v3: h.role.clone(),
                private_ip: h.private_ip.to_string(),
                volume_name: h.volume_name(),
                volume_class: rule.class.clone(),
                size_gb: rule.size_gb,
                mountpoint: rule.mountpoint(),
            }
        })
        .collect();
    volumes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let totals = PlanTotals {
        servers: hosts.len(),
        volumes: volumes.len(),
        size_gb: volumes.iter().map(|v| u64::from(v.size_gb)).sum(),
    };
    Plan {
        naming: "kbv3-<hostname>-data, mounted at /data/<volume class>".into(),
        volumes,
        totals,
    }
}

impl Plan {
    /// A short human summary: counts, total GB, GB per role.
    pub fn summary(&self) -> String {
        let mut per_role: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
        for v in &self.volumes {
            let e = per_role.entry(&v.role_v3).or_default();
            e.0 += 1;
            e.1 += u64::from(v.size_gb);
        }
        let mut out = format!(
            "PH3-01 plan: {} servers, {} target volumes, {} GB in all\n",
            self.totals.servers, self.totals.volumes, self.totals.size_gb
        );
        for (role, (n, gb)) in per_role {
            out.push_str(&format!(
                "  {role:<14} {n:>3} × {:>4} GB = {gb:>5} GB\n",
                gb / n as u64
            ));
        }
        out
    }
}
