//! The simulator's state and one pure function per API operation.
//!
//! Nothing here does I/O or reads the clock: every operation takes `now`
//! (milliseconds since the Unix epoch) and whether a new action should fail
//! (fault injection), so the state machine can be tested directly.
//! Asynchronous actions run for `action_ms` and apply their effect when they
//! finish ([`World::advance`]); while one runs, its volume (and, for attach and
//! detach, its server) is `locked`. The volume operations are in
//! [`super::operations`].

use crate::hcloud::ApiCode;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::hcloud::rules::MAX_VOLUMES_PER_SERVER;
use crate::hcloud::types::{
    Action, ActionError, ActionResource, ActionStatus, Labels, Location, Protection, Volume,
};

use super::catalog;
use super::SimError;
use crate::clock::rfc3339 as timestamp;

/// A server of the simulated project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimServer {
    pub id: i64,
    pub name: String,
    pub location: String,
    pub status: String,
    pub created: String,
    pub private_ip: Option<String>,
    pub labels: Labels,
    pub volumes: Vec<i64>,
}

/// A volume of the simulated project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimVolume {
    pub id: i64,
    pub name: String,
    pub size: u32,
    pub server: Option<i64>,
    pub location: String,
    pub labels: Labels,
    pub format: Option<String>,
    pub protected: bool,
    pub created: String,
    pub status: String,
}

/// What an action does to the world when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Create { volume: i64 },
    Attach { volume: i64, server: i64 },
    Detach { volume: i64, server: i64 },
    Resize { volume: i64, size: u32 },
    Protect { volume: i64, delete: bool },
}

/// An action and its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimAction {
    pub id: i64,
    pub command: String,
    pub effect: Effect,
    pub resources: Vec<(i64, String)>,
    pub started_ms: u64,
    /// Runs only after this action has finished (the attach of a create with server).
    pub after: Option<i64>,
    pub will_fail: bool,
    pub finished_ms: Option<u64>,
    pub failed: bool,
}

/// The whole simulated project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub locations: Vec<Location>,
    pub servers: BTreeMap<i64, SimServer>,
    pub volumes: BTreeMap<i64, SimVolume>,
    pub actions: BTreeMap<i64, SimAction>,
    pub next_volume_id: i64,
    pub next_action_id: i64,
    /// How long an asynchronous action runs.
    pub action_ms: u64,
    /// Where `linux_device` links live; `None`: the real `/dev/disk/by-id`.
    #[serde(default)]
    pub device_dir: Option<String>,
}

/// An effect that was applied, reported so an I/O layer can mirror it.
pub type Applied = Effect;

impl World {
    // ---- time ------------------------------------------------------------------

    /// Finishes every action whose time has come, in id order, applying the
    /// effects of those that succeed. Returns the applied effects.
    pub fn advance(&mut self, now: u64) -> Vec<Applied> {
        let mut applied = Vec::new();
        // The running actions, in id order: finished ones (most of a long
        // history) are looked at once per call, not once per finishing action.
        let mut pending: Vec<i64> = self
            .actions
            .values()
            .filter(|a| a.finished_ms.is_none())
            .map(|a| a.id)
            .collect();
        loop {
            let due = pending.iter().find_map(|id| {
                let a = &self.actions[id];
                let start = self.start_of(a)?;
                (start + self.action_ms <= now).then_some((a.id, start + self.action_ms))
            });
            let Some((id, at)) = due else { return applied };
            pending.retain(|p| *p != id);
            let (effect, will_fail, after) = {
                let a = &self.actions[&id];
                (a.effect, a.will_fail, a.after)
            };
            let prerequisite_failed =
                after.is_some_and(|p| self.actions.get(&p).is_some_and(|p| p.failed));
            let failed = will_fail || prerequisite_failed || !self.effect_possible(effect);
            if let Some(a) = self.actions.get_mut(&id) {
                a.finished_ms = Some(at);
                a.failed = failed;
            }
            if failed {
                if let Effect::Create { volume } = effect {
                    self.volumes.remove(&volume);
                }
            } else {
                self.apply(effect);
                applied.push(effect);
            }
        }
    }

    /// When an action starts running: its own start, or when its prerequisite finished.
    pub(super) fn start_of(&self, a: &SimAction) -> Option<u64> {
        match a.after {
            None => Some(a.started_ms),
            Some(p) => self
                .actions
                .get(&p)
                .and_then(|p| p.finished_ms)
                .map(|f| f.max(a.started_ms)),
        }
    }

    pub(super) fn effect_possible(&self, effect: Effect) -> bool {
        match effect {
            Effect::Attach { volume, server } => {
                self.volumes
                    .get(&volume)
                    .is_some_and(|v| v.server.is_none())
                    && self
                        .servers
                        .get(&server)
                        .is_some_and(|s| s.volumes.len() < MAX_VOLUMES_PER_SERVER)
            }
            Effect::Create { volume }
            | Effect::Detach { volume, .. }
            | Effect::Resize { volume, .. }
            | Effect::Protect { volume, .. } => self.volumes.contains_key(&volume),
        }
    }

    pub(super) fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Create { volume } => {
                if let Some(v) = self.volumes.get_mut(&volume) {
                    v.status = "available".into();
                }
            }
            Effect::Attach { volume, server } => {
                if let Some(v) = self.volumes.get_mut(&volume) {
                    v.server = Some(server);
                }
                if let Some(s) = self.servers.get_mut(&server) {
                    s.volumes.push(volume);
                }
            }
            Effect::Detach { volume, server } => {
                if let Some(v) = self.volumes.get_mut(&volume) {
                    v.server = None;
                }
                if let Some(s) = self.servers.get_mut(&server) {
                    s.volumes.retain(|id| *id != volume);
                }
            }
            Effect::Resize { volume, size } => {
                if let Some(v) = self.volumes.get_mut(&volume) {
                    v.size = size;
                }
            }
            Effect::Protect { volume, delete } => {
                if let Some(v) = self.volumes.get_mut(&volume) {
                    v.protected = delete;
                }
            }
        }
    }

    pub(super) fn volume_locked(&self, volume: i64) -> bool {
        self.running().any(|a| {
            a.resources
                .iter()
                .any(|(id, kind)| *id == volume && kind == "volume")
        })
    }

    pub(super) fn server_locked(&self, server: i64) -> bool {
        self.running().any(|a| {
            matches!(a.effect, Effect::Attach { .. } | Effect::Detach { .. })
                && a.resources
                    .iter()
                    .any(|(id, kind)| *id == server && kind == "server")
        })
    }

    pub(super) fn running(&self) -> impl Iterator<Item = &SimAction> {
        self.actions.values().filter(|a| a.finished_ms.is_none())
    }

    pub(super) fn start_action(
        &mut self,
        command: &str,
        effect: Effect,
        resources: Vec<(i64, &str)>,
        now: u64,
        fail: bool,
    ) -> i64 {
        let id = self.next_action_id;
        self.next_action_id += 1;
        let resources = resources
            .into_iter()
            .map(|(i, k)| (i, k.to_string()))
            .collect();
        let action = SimAction {
            id,
            command: command.into(),
            effect,
            resources,
            started_ms: now,
            after: None,
            will_fail: fail,
            finished_ms: None,
            failed: false,
        };
        self.actions.insert(id, action);
        id
    }

    // ---- lookups ---------------------------------------------------------------

    /// A location by id or name.
    pub fn location(&self, id_or_name: &str) -> Option<&Location> {
        self.locations
            .iter()
            .find(|l| l.name == id_or_name || l.id.to_string() == id_or_name)
    }

    pub(super) fn volume(&self, id: i64) -> Result<&SimVolume, SimError> {
        self.volumes
            .get(&id)
            .ok_or_else(|| SimError::not_found("volume"))
    }

    pub(super) fn server(&self, id: i64) -> Result<&SimServer, SimError> {
        self.servers
            .get(&id)
            .ok_or_else(|| SimError::not_found("server"))
    }

    // ---- rendering -------------------------------------------------------------

    /// A volume in the API's shape.
    pub fn render_volume(&self, v: &SimVolume) -> Volume {
        Volume {
            id: v.id,
            created: v.created.clone(),
            name: v.name.clone(),
            server: v.server,
            location: self
                .location(&v.location)
                .cloned()
                .unwrap_or_else(|| unknown_location(&v.location)),
            size: v.size,
            linux_device: format!(
                "{}/scsi-0HC_Volume_{}",
                self.device_dir.as_deref().unwrap_or("/dev/disk/by-id"),
                v.id
            ),
            protection: Protection {
                delete: v.protected,
            },
            labels: v.labels.clone(),
            status: v.status.clone(),
            format: v.format.clone(),
        }
    }

    /// An action in the API's shape.
    pub fn render_action(&self, a: &SimAction) -> Action {
        let finished = a.finished_ms;
        Action {
            id: a.id,
            command: a.command.clone(),
            status: match (finished, a.failed) {
                (None, _) => ActionStatus::Running,
                (Some(_), false) => ActionStatus::Success,
                (Some(_), true) => ActionStatus::Error,
            },
            progress: if finished.is_some() { 100 } else { 0 },
            started: timestamp(self.start_of(a).unwrap_or(a.started_ms)),
            finished: finished.map(timestamp),
            resources: a
                .resources
                .iter()
                .map(|(id, kind)| ActionResource {
                    id: *id,
                    kind: kind.clone(),
                })
                .collect(),
            error: a.failed.then(|| ActionError {
                code: ApiCode::ActionFailed.to_string(),
                message: "Action failed".into(),
            }),
        }
    }

    /// The private network its servers are on (`GET /networks/1`), if any.
    pub fn render_network(&self) -> Option<Value> {
        let servers = self
            .servers
            .values()
            .filter(|s| s.private_ip.is_some())
            .map(|s| s.id)
            .collect();
        let zone = self
            .locations
            .first()
            .map_or("eu-central", |l| l.network_zone.as_str());
        catalog::network(servers, zone)
    }

    /// A server in the API's full shape (every key the OpenAPI document requires).
    pub fn render_server(&self, s: &SimServer) -> Value {
        let location = self
            .location(&s.location)
            .cloned()
            .unwrap_or_else(|| unknown_location(&s.location));
        let private_net: Vec<Value> = s
            .private_ip
            .iter()
            .map(
                |ip| json!({"network": catalog::NETWORK_ID, "ip": ip, "alias_ips": [], "mac_address": mac_for(s.id)}),
            )
            .collect();
        json!({
            "id": s.id,
            "name": s.name,
            "status": s.status,
            "created": s.created,
            "public_net": {
                "ipv4": {"id": s.id * 10, "ip": format!("192.0.2.{}", s.id % 250 + 1), "blocked": false,
                         "dns_ptr": format!("static.{}.example.com", s.id)},
                "ipv6": {"id": s.id * 10 + 1, "ip": "2001:db8::/64", "blocked": false, "dns_ptr": []},
                "floating_ips": [],
                "firewalls": []
            },
            "private_net": private_net,
            "server_type": catalog::server_type(&self.locations),
            "datacenter": catalog::datacenter(&location),
            "location": location,
            "image": null,
            "iso": null,
            "rescue_enabled": false,
            "locked": false,
            "backup_window": null,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520u64,
            "protection": {"delete": false, "rebuild": false},
            "labels": s.labels,
            "volumes": s.volumes,
            "load_balancers": [],
            "primary_disk_size": 80,
            "placement_group": null
        })
    }

    // ---- invariants ----------------------------------------------------------------

    /// Every broken invariant, described; empty when the world is consistent.
    pub fn invariant_violations(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for v in self.volumes.values() {
            if let Some(s) = v.server {
                match self.servers.get(&s) {
                    Some(server) if server.volumes.contains(&v.id) => {
                        if server.location != v.location {
                            problems.push(format!(
                                "volume {} and server {} are in different locations",
                                v.id, s
                            ));
                        }
                    }
                    _ => problems.push(format!(
                        "volume {} says server {} but the server does not list it",
                        v.id, s
                    )),
                }
            }
            if self.volumes.values().filter(|o| o.name == v.name).count() > 1 {
                problems.push(format!("volume name {} is used twice", v.name));
            }
        }
        for s in self.servers.values() {
            for vid in &s.volumes {
                if self.volumes.get(vid).and_then(|v| v.server) != Some(s.id) {
                    problems.push(format!(
                        "server {} lists volume {} which is not attached to it",
                        s.id, vid
                    ));
                }
            }
            if s.volumes.len() > MAX_VOLUMES_PER_SERVER {
                problems.push(format!("server {} has {} volumes", s.id, s.volumes.len()));
            }
        }
        problems
    }
}

fn unknown_location(name: &str) -> Location {
    Location {
        id: 0,
        name: name.into(),
        description: name.into(),
        country: "DE".into(),
        city: name.into(),
        latitude: 0.0,
        longitude: 0.0,
        network_zone: "eu-central".into(),
    }
}

fn mac_for(id: i64) -> String {
    let b = id.to_be_bytes();
    format!("86:00:00:{:02x}:{:02x}:{:02x}", b[5], b[6], b[7])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::requests::{CreateVolume, Placement};
    use crate::sim::seed::default_locations;

    /// A small world: two servers in nbg1, one in hel1, no volumes.
    pub(crate) fn world() -> World {
        let mut servers = BTreeMap::new();
        for (id, name, loc) in [(1, "a", "nbg1"), (2, "b", "nbg1"), (3, "c", "hel1")] {
            servers.insert(
                id,
                SimServer {
                    id,
                    name: name.into(),
                    location: loc.into(),
                    status: "running".into(),
                    created: timestamp(0),
                    private_ip: None,
                    labels: Labels::new(),
                    volumes: vec![],
                },
            );
        }
        World {
            locations: default_locations(),
            servers,
            volumes: BTreeMap::new(),
            actions: BTreeMap::new(),
            next_volume_id: 100,
            next_action_id: 1000,
            action_ms: 10,
            device_dir: None,
        }
    }

    fn create(
        w: &mut World,
        name: &str,
        placement: Placement,
        now: u64,
    ) -> Result<(Volume, Action, Vec<Action>), SimError> {
        let req = CreateVolume {
            name: name.into(),
            size: 10,
            placement,
            labels: Labels::new(),
            automount: false,
            format: None,
        };
        w.create_volume(req, now, false)
    }

    #[test]
    fn create_with_server_attaches_after_the_create_finishes() {
        let mut w = world();
        let (v, create, next) = create(&mut w, "v", Placement::Server(1), 0).unwrap();
        assert_eq!(
            (v.status.as_str(), v.server, next.len()),
            ("creating", None, 1)
        );
        assert_eq!(create.resources[0].kind, "server");
        assert_eq!(w.advance(9), vec![]);
        assert_eq!(w.advance(10), vec![Effect::Create { volume: v.id }]);
        assert_eq!(
            w.advance(20),
            vec![Effect::Attach {
                volume: v.id,
                server: 1
            }]
        );
        assert_eq!(w.servers[&1].volumes, vec![v.id]);
        assert!(w.invariant_violations().is_empty());
    }

    #[test]
    fn operation_errors_table() {
        let mut w = world();
        let (v, ..) = create(&mut w, "v", Placement::Location("nbg1".into()), 0).unwrap();
        // Running create locks the volume.
        assert_eq!(
            w.attach_volume(v.id, 1, 1, false)
                .unwrap_err()
                .code
                .as_str(),
            "locked"
        );
        w.advance(100);
        let cases: Vec<(Result<(), SimError>, u16, &str)> = vec![
            (
                create(&mut w, "v", Placement::Location("nbg1".into()), 100).map(|_| ()),
                409,
                "uniqueness_error",
            ),
            (
                create(&mut w, "w", Placement::Location("mars1".into()), 100).map(|_| ()),
                422,
                "invalid_input",
            ),
            (
                create(&mut w, "w", Placement::Server(99), 100).map(|_| ()),
                404,
                "not_found",
            ),
            (
                w.attach_volume(v.id, 3, 100, false).map(|_| ()),
                422,
                "invalid_input",
            ),
            (
                w.detach_volume(v.id, 100, false).map(|_| ()),
                422,
                "invalid_input",
            ),
            (
                w.resize_volume(v.id, 10, 100, false).map(|_| ()),
                422,
                "invalid_input",
            ),
            (w.delete_volume(12345), 404, "not_found"),
        ];
        for (i, (got, status, code)) in cases.into_iter().enumerate() {
            let err = got.unwrap_err();
            assert_eq!(
                (err.status, err.code.as_str()),
                (status, code),
                "case {i}: {}",
                err.message
            );
        }
        w.attach_volume(v.id, 1, 100, false).unwrap();
        assert_eq!(
            w.attach_volume(v.id, 2, 101, false)
                .unwrap_err()
                .code
                .as_str(),
            "locked"
        );
        w.advance(200);
        assert_eq!(
            w.attach_volume(v.id, 2, 200, false)
                .unwrap_err()
                .code
                .as_str(),
            "volume_already_attached"
        );
        assert_eq!(
            w.delete_volume(v.id).unwrap_err().code.as_str(),
            "service_error"
        );
        w.change_protection(v.id, Some(true), 200).unwrap();
        assert_eq!(
            w.delete_volume(v.id).unwrap_err().code.as_str(),
            "protected"
        );
    }

    #[test]
    fn a_failed_action_has_no_effect_and_reports_an_error() {
        let mut w = world();
        let (v, ..) = create(&mut w, "v", Placement::Location("nbg1".into()), 0).unwrap();
        w.advance(100);
        let a = w.attach_volume(v.id, 1, 100, true).unwrap();
        w.advance(200);
        let done = w.render_action(&w.actions[&a.id]);
        assert_eq!(done.status, ActionStatus::Error);
        assert_eq!(done.error.unwrap().code.as_str(), "action_failed");
        assert_eq!(w.volumes[&v.id].server, None);
    }

    #[test]
    fn at_most_sixteen_volumes_per_server() {
        let mut w = world();
        for i in 0..16 {
            create(&mut w, &format!("v{i}"), Placement::Server(1), i * 100).unwrap();
            // The attach that follows a create locks the server until it is done.
            assert_eq!(
                create(&mut w, "other", Placement::Server(1), i * 100 + 1)
                    .unwrap_err()
                    .code
                    .as_str(),
                "locked"
            );
            w.advance(i * 100 + 50);
        }
        let err = create(&mut w, "v16", Placement::Server(1), 5000).unwrap_err();
        assert_eq!(err.code.as_str(), "limit_exceeded_error");
        assert_eq!(w.servers[&1].volumes.len(), 16);
    }
}
