//! The volume operations of the simulated API, one pure function each: they
//! check the request against the world, start the action (or change the
//! world at once) and return what the API answers.

use serde_json::json;

use super::requests::{CreateVolume, Placement, UpdateVolume};
use super::world::{Effect, SimVolume, World};
use super::SimError;
use crate::clock::rfc3339 as timestamp;
use crate::hcloud::rules::MAX_VOLUMES_PER_SERVER;
use crate::hcloud::types::{Action, Volume};
use crate::hcloud::ApiCode;

impl World {
    /// `POST /volumes`: the volume, its `create_volume` action and, with a
    /// server, the `attach_volume` that follows it.
    pub fn create_volume(
        &mut self,
        req: CreateVolume,
        now: u64,
        fail: bool,
    ) -> Result<(Volume, Action, Vec<Action>), SimError> {
        let (location, server) = match &req.placement {
            Placement::Location(l) => {
                let loc = self
                    .location(l)
                    .ok_or_else(|| SimError::invalid_field("location", "location not found"))?;
                (loc.name.clone(), None)
            }
            Placement::Server(id) => (self.server(*id)?.location.clone(), Some(*id)),
        };
        if self.volumes.values().any(|v| v.name == req.name) {
            return Err(uniqueness());
        }
        if let Some(s) = server {
            self.check_attachable(s)?;
        }
        let id = self.next_volume_id;
        self.next_volume_id += 1;
        self.volumes.insert(
            id,
            SimVolume {
                id,
                name: req.name,
                size: req.size,
                server: None,
                location,
                labels: req.labels,
                format: req.format,
                protected: false,
                created: timestamp(now),
                status: "creating".into(),
            },
        );
        let mut resources = vec![(id, "volume")];
        if let Some(s) = server {
            resources.insert(0, (s, "server"));
        }
        let create = self.start_action(
            "create_volume",
            Effect::Create { volume: id },
            resources,
            now,
            fail,
        );
        let mut next = Vec::new();
        if let Some(s) = server {
            let attach = self.start_action(
                "attach_volume",
                Effect::Attach {
                    volume: id,
                    server: s,
                },
                vec![(s, "server"), (id, "volume")],
                now,
                false,
            );
            if let Some(a) = self.actions.get_mut(&attach) {
                a.after = Some(create);
            }
            next.push(self.render_action(&self.actions[&attach]));
        }
        let volume = self.render_volume(&self.volumes[&id]);
        Ok((volume, self.render_action(&self.actions[&create]), next))
    }

    /// `PUT /volumes/{id}`: rename and/or replace labels.
    pub fn update_volume(&mut self, id: i64, req: UpdateVolume) -> Result<Volume, SimError> {
        self.volume(id)?;
        if let Some(name) = &req.name {
            if self.volumes.values().any(|v| v.name == *name && v.id != id) {
                return Err(uniqueness());
            }
        }
        let v = self.volumes.get_mut(&id).expect("checked above");
        if let Some(name) = req.name {
            v.name = name;
        }
        if let Some(labels) = req.labels {
            v.labels = labels;
        }
        let v = v.clone();
        Ok(self.render_volume(&v))
    }

    /// `DELETE /volumes/{id}`: only a detached, unprotected, idle volume.
    pub fn delete_volume(&mut self, id: i64) -> Result<(), SimError> {
        let v = self.volume(id)?;
        if v.protected {
            return Err(SimError::new(
                423,
                ApiCode::Protected,
                "volume deletion is protected",
            ));
        }
        if self.volume_locked(id) {
            return Err(locked("volume"));
        }
        if v.server.is_some() {
            return Err(SimError::new(
                422,
                ApiCode::ServiceError,
                format!("volume with ID '{id}' is still attached to a server"),
            ));
        }
        self.volumes.remove(&id);
        Ok(())
    }

    /// `POST /volumes/{id}/actions/attach`.
    pub fn attach_volume(
        &mut self,
        id: i64,
        server: i64,
        now: u64,
        fail: bool,
    ) -> Result<Action, SimError> {
        let v = self.volume(id)?.clone();
        let s = self.server(server)?.clone();
        if self.volume_locked(id) {
            return Err(locked("volume"));
        }
        if v.server.is_some() {
            return Err(SimError::new(
                422,
                ApiCode::VolumeAlreadyAttached,
                "volume is already attached to a server",
            ));
        }
        if v.location != s.location {
            return Err(SimError::new(
                422,
                ApiCode::InvalidInput,
                "volume and server must be in the same location",
            ));
        }
        self.check_attachable(server)?;
        let effect = Effect::Attach { volume: id, server };
        let action = self.start_action(
            "attach_volume",
            effect,
            vec![(server, "server"), (id, "volume")],
            now,
            fail,
        );
        Ok(self.render_action(&self.actions[&action]))
    }

    fn check_attachable(&self, server: i64) -> Result<(), SimError> {
        if self.server_locked(server) {
            return Err(locked("server"));
        }
        let attached = self.server(server)?.volumes.len();
        let pending = self
            .running()
            .filter(|a| matches!(a.effect, Effect::Attach { server: s, .. } if s == server))
            .count();
        if attached + pending >= MAX_VOLUMES_PER_SERVER {
            return Err(SimError::new(
                422,
                ApiCode::LimitExceededError,
                format!(
                    "server already has the maximum of {MAX_VOLUMES_PER_SERVER} volumes attached"
                ),
            ));
        }
        Ok(())
    }

    /// `POST /volumes/{id}/actions/detach`.
    pub fn detach_volume(&mut self, id: i64, now: u64, fail: bool) -> Result<Action, SimError> {
        let v = self.volume(id)?;
        if self.volume_locked(id) {
            return Err(locked("volume"));
        }
        let Some(server) = v.server else {
            return Err(SimError::new(
                422,
                ApiCode::InvalidInput,
                "volume is not attached to a server",
            ));
        };
        if self.server_locked(server) {
            return Err(locked("server"));
        }
        let effect = Effect::Detach { volume: id, server };
        let action = self.start_action(
            "detach_volume",
            effect,
            vec![(server, "server"), (id, "volume")],
            now,
            fail,
        );
        Ok(self.render_action(&self.actions[&action]))
    }

    /// `POST /volumes/{id}/actions/resize`: grow only.
    pub fn resize_volume(
        &mut self,
        id: i64,
        size: u32,
        now: u64,
        fail: bool,
    ) -> Result<Action, SimError> {
        let v = self.volume(id)?;
        if size <= v.size {
            return Err(SimError {
                status: 422,
                code: ApiCode::InvalidInput,
                message: "size downgrade is not allowed".into(),
                details: json!({"fields": [{"name": "size", "messages": ["size downgrade is not allowed"]}]}),
            });
        }
        if self.volume_locked(id) {
            return Err(locked("volume"));
        }
        let action = self.start_action(
            "resize_volume",
            Effect::Resize { volume: id, size },
            vec![(id, "volume")],
            now,
            fail,
        );
        Ok(self.render_action(&self.actions[&action]))
    }

    /// `POST /volumes/{id}/actions/change_protection`: applied at once, like
    /// the real API, and returned already finished.
    pub fn change_protection(
        &mut self,
        id: i64,
        delete: Option<bool>,
        now: u64,
    ) -> Result<Action, SimError> {
        let v = self.volume(id)?;
        if self.volume_locked(id) {
            return Err(locked("volume"));
        }
        let delete = delete.unwrap_or(v.protected);
        let effect = Effect::Protect { volume: id, delete };
        let action = self.start_action(
            "change_protection",
            effect,
            vec![(id, "volume")],
            now,
            false,
        );
        self.apply(effect);
        if let Some(a) = self.actions.get_mut(&action) {
            a.finished_ms = Some(now);
        }
        Ok(self.render_action(&self.actions[&action]))
    }
}

fn uniqueness() -> SimError {
    SimError {
        status: 409,
        code: ApiCode::UniquenessError,
        message: "name is already used".into(),
        details: json!({"fields": [{"name": "name"}]}),
    }
}

fn locked(what: &str) -> SimError {
    SimError::new(
        423,
        ApiCode::Locked,
        format!("cannot perform operation because {what} is locked"),
    )
}
