//! The Ansible inventory (script protocol) built from the fleet files and,
//! when present, the reviewed diff (pure).
//!
//! Groups: one per role_v3 (its name made safe: lowercase `[a-z0-9_]`), one
//! per volume class (`data_<class>`), and `kbv3`, whose children are the
//! role groups. With a diff, each host carries exactly its own legacy
//! volumes (`kbv3_legacy_volumes`), and the unattached legacy volumes belong
//! to one pseudo-host, [`ORPHAN_HOST`] in group [`ORPHAN_GROUP`], so that a
//! play selection (`--limit`) reaches them only when it names them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::diff::{Diff, ListedVolume};
use super::paths::FleetPaths;
use super::plan::Plan;
use super::reviewed::ReviewedDiff;

/// The umbrella group.
pub const UMBRELLA: &str = "kbv3";
/// The pseudo-host that owns the unattached legacy volumes of the diff.
pub const ORPHAN_HOST: &str = "kbv3-orphan-volumes";
/// Its group: `--limit 'web-01:kbv3_orphans'` selects it explicitly.
pub const ORPHAN_GROUP: &str = "kbv3_orphans";

/// `db-postgres` → `db_postgres`.
pub fn safe_group_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The group of a volume class.
pub fn class_group_name(class: &str) -> String {
    format!("data_{}", safe_group_name(class))
}

/// Marks text that Jinja would template (`{{`, `{%`, `{#`) as unsafe.
fn text(s: &str) -> Value {
    if ["{{", "{%", "{#"].iter().any(|m| s.contains(m)) {
        json!({ "__ansible_unsafe": s })
    } else {
        json!(s)
    }
}

/// A listed volume (to delete, or left alone) as PH3-02 needs it: every
/// field a deletion's `expect` checks, and the reason.
fn listed(d: &ListedVolume) -> Value {
    json!({
        "id": d.id,
        "name": text(&d.name),
        "size": d.size_gb,
        "location": text(&d.location),
        "server": d.server_name.as_deref().map(text),
        "reason": text(&d.reason),
    })
}

/// The host variables of every fleet host, by hostname.
pub fn hostvars(plan: &Plan, diff: Option<&Diff>) -> BTreeMap<String, Value> {
    // The diff's legacy volumes by server, grouped once rather than per host.
    let mut legacy_by_server: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for d in diff.map_or(&[][..], |d| &d.volumes_to_delete) {
        if let Some(server) = d.server_name.as_deref() {
            legacy_by_server.entry(server).or_default().push(listed(d));
        }
    }
    let fixes: BTreeMap<&str, _> = diff
        .map_or(&[][..], |d| &d.volumes_to_fix)
        .iter()
        .map(|f| (f.hostname.as_str(), f))
        .collect();
    plan.volumes
        .iter()
        .map(|p| {
            let mut vars = json!({
                "ansible_host": text(&p.private_ip),
                "role_v3": text(&p.role_v3),
                "kbv3_volume_name": text(&p.volume_name),
                "kbv3_volume_size": p.size_gb,
                "kbv3_volume_class": text(&p.volume_class),
                "kbv3_mountpoint": text(&p.mountpoint),
            });
            if diff.is_some() {
                let mine = legacy_by_server
                    .get(p.hostname.as_str())
                    .cloned()
                    .unwrap_or_default();
                vars["kbv3_legacy_volumes"] = Value::Array(mine);
                let fix = fixes.get(p.hostname.as_str());
                vars["kbv3_volume_move"] = json!(fix.is_some_and(|f| f.move_volume));
                vars["kbv3_volume_fixes"] = json!(fix.map_or(&[][..], |f| &f.fixes[..]));
            }
            (p.hostname.clone(), vars)
        })
        .collect()
}

/// The whole `--list` answer. Fails when group or host names would collide.
pub fn render(plan: &Plan, diff: Option<&ReviewedDiff>) -> Result<Value, String> {
    let mut roles: BTreeMap<String, (BTreeSet<&str>, BTreeSet<String>)> = BTreeMap::new();
    let mut classes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &plan.volumes {
        let entry = roles.entry(safe_group_name(&p.role_v3)).or_default();
        entry.0.insert(&p.role_v3);
        entry.1.insert(p.hostname.clone());
        classes
            .entry(class_group_name(&p.volume_class))
            .or_default()
            .insert(p.hostname.clone());
    }
    for (group, (names, _)) in &roles {
        if names.len() > 1 {
            let names: Vec<&str> = names.iter().copied().collect();
            return Err(format!(
                "roles {} all make the group name '{group}'; rename one of them",
                names.join(" and ")
            ));
        }
        if ["all", "ungrouped", UMBRELLA, ORPHAN_GROUP].contains(&group.as_str())
            || classes.contains_key(group)
        {
            return Err(format!(
                "role '{}' makes the group name '{group}', which is reserved; rename the role",
                names.iter().next().unwrap_or(&"")
            ));
        }
    }
    if plan.volumes.iter().any(|p| p.hostname == ORPHAN_HOST) {
        return Err(format!(
            "hostname '{ORPHAN_HOST}' is reserved for the unattached legacy volumes; rename the server"
        ));
    }
    let mut out = Map::new();
    let mut host_vars = hostvars(plan, diff.map(|r| &r.diff));
    let mut all_vars = Map::new();
    // The orphans' group always exists (PH3-02 names it), empty without orphans.
    let mut orphan_hosts = Vec::new();
    if let Some(r) = diff {
        let d = &r.diff;
        let orphans: Vec<Value> = d.orphans().map(listed).collect();
        if !orphans.is_empty() {
            host_vars.insert(
                ORPHAN_HOST.into(),
                // No volume of its own: size 0 keeps numeric expressions over
                // the fleet (constructed groups) working for it.
                json!({"ansible_connection": "local", "kbv3_orphan_host": true, "kbv3_volume_size": 0,
                       "kbv3_legacy_volumes": orphans}),
            );
            orphan_hosts.push(ORPHAN_HOST);
        }
        let left_alone: Vec<Value> = d.volumes_left_alone.iter().map(listed).collect();
        all_vars.insert("kbv3_left_alone_volumes".into(), Value::Array(left_alone));
        all_vars.insert(
            "kbv3_diff".into(),
            json!({
                "path": text(&r.path.display().to_string()),
                "confirmation_code": r.code,
                "generated_at": text(&d.generated_at),
                "strategy": text(&d.strategy),
                "totals": d.totals,
            }),
        );
    }
    out.insert("_meta".into(), json!({ "hostvars": host_vars }));
    out.insert(
        "all".into(),
        json!({ "children": [UMBRELLA, ORPHAN_GROUP], "vars": all_vars }),
    );
    out.insert(ORPHAN_GROUP.into(), json!({ "hosts": orphan_hosts }));
    out.insert(
        UMBRELLA.into(),
        json!({ "children": roles.keys().collect::<Vec<_>>() }),
    );
    for (group, (_, members)) in roles {
        out.insert(group, json!({ "hosts": members }));
    }
    for (group, members) in classes {
        out.insert(group, json!({ "hosts": members }));
    }
    Ok(Value::Object(out))
}

/// Adds `kbv3_fleet` to the vars of `all`: this executable and the
/// environment that points it at the same fleet files, so that playbooks
/// run the tool that made the inventory (from this repository or from the
/// installed collection) on the files it read.
pub fn add_fleet_vars(inventory: &mut Value, exe: Option<&Path>, paths: &FleetPaths) {
    let abs = |p: &Path| {
        text(
            &std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string(),
        )
    };
    let dir = paths.servers.parent().unwrap_or(Path::new("."));
    let fleet = json!({
        "inventory": exe.map(abs),
        "state_dir": abs(&paths.state),
        "env": {
            "KBV3_FLEET_DIR": abs(dir),
            "KBV3_STATE_DIR": abs(&paths.state),
            "KBV3_SERVERS_FILE": abs(&paths.servers),
            "KBV3_RULES_FILE": abs(&paths.rules),
            "KBV3_DIFF_FILE": abs(&paths.diff),
        },
    });
    if let Some(vars) = inventory
        .pointer_mut("/all/vars")
        .and_then(Value::as_object_mut)
    {
        vars.insert("kbv3_fleet".into(), fleet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::plan::{PlanTotals, PlannedVolume};

    fn plan(rows: &[(&str, &str, &str)]) -> Plan {
        let volumes = rows
            .iter()
            .map(|(h, role, class)| PlannedVolume {
                hostname: h.to_string(),
                role_v3: role.to_string(),
                private_ip: "10.0.0.1".into(),
                volume_name: format!("kbv3-{h}-data"),
                volume_class: class.to_string(),
                size_gb: 20,
                mountpoint: format!("/data/{}", class.replace('-', "_")),
            })
            .collect();
        Plan {
            naming: String::new(),
            volumes,
            totals: PlanTotals {
                servers: 0,
                volumes: 0,
                size_gb: 0,
            },
        }
    }

    #[test]
    fn groups_by_role_and_class_under_the_umbrella() {
        let inv = render(
            &plan(&[
                ("crm-01", "app-crm", "apps_misc"),
                ("etl-01", "app-etl", "apps_misc"),
                ("redis-01", "redis", "redis"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            inv["kbv3"]["children"],
            json!(["app_crm", "app_etl", "redis"])
        );
        assert_eq!(inv["data_apps_misc"]["hosts"], json!(["crm-01", "etl-01"]));
        assert_eq!(inv["redis"]["hosts"], json!(["redis-01"]));
        assert_eq!(
            inv["_meta"]["hostvars"]["crm-01"]["kbv3_mountpoint"],
            json!("/data/apps_misc")
        );
        assert!(inv["_meta"]["hostvars"]["crm-01"]
            .get("kbv3_legacy_volumes")
            .is_none());
    }

    #[test]
    fn colliding_group_names_are_refused() {
        let err = render(&plan(&[("a", "db-x", "c1"), ("b", "db_x", "c2")]), None).unwrap_err();
        assert_eq!(
            err,
            "roles db-x and db_x all make the group name 'db_x'; rename one of them"
        );
        assert!(render(&plan(&[("a", "kbv3", "c")]), None)
            .unwrap_err()
            .contains("reserved"));
    }

    #[test]
    fn template_text_is_marked_unsafe() {
        assert_eq!(
            text("{{ lookup('pipe','id') }}"),
            json!({"__ansible_unsafe": "{{ lookup('pipe','id') }}"})
        );
        assert_eq!(text("plain"), json!("plain"));
    }
}
