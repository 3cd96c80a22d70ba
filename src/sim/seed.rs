//! The seed file (the project a simulator starts with) and the state file
//! (the project as it was when the simulator last changed it).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::hcloud::rules;
use crate::hcloud::types::{Labels, Location};

use super::world::{SimServer, SimVolume, World};
use crate::clock::rfc3339 as timestamp;

/// A seed file: servers and volumes; locations default to the six real ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default, rename = "_comment")]
    _comment: Option<String>,
    #[serde(default)]
    locations: Option<Vec<Location>>,
    #[serde(default)]
    servers: Vec<SeedServer>,
    #[serde(default)]
    volumes: Vec<SeedVolume>,
    #[serde(default)]
    next_volume_id: Option<i64>,
    #[serde(default)]
    next_action_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedServer {
    id: i64,
    name: String,
    location: String,
    #[serde(default)]
    private_ip: Option<String>,
    #[serde(default)]
    labels: Labels,
    #[serde(default = "running")]
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedVolume {
    id: i64,
    name: String,
    size: u32,
    /// Name of the server it is attached to.
    #[serde(default)]
    server: Option<String>,
    /// Needed only when `server` is absent.
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    created: Option<String>,
}

fn running() -> String {
    "running".into()
}

/// The six Hetzner locations, with their public ids.
pub fn default_locations() -> Vec<Location> {
    let rows = [
        (
            1,
            "fsn1",
            "Falkenstein DC Park 1",
            "DE",
            "Falkenstein",
            50.47612,
            12.370071,
            "eu-central",
        ),
        (
            2,
            "nbg1",
            "Nuremberg DC Park 1",
            "DE",
            "Nuremberg",
            49.452102,
            11.076665,
            "eu-central",
        ),
        (
            3,
            "hel1",
            "Helsinki DC Park 1",
            "FI",
            "Helsinki",
            60.169855,
            24.938379,
            "eu-central",
        ),
        (
            4,
            "ash",
            "Ashburn, VA",
            "US",
            "Ashburn, VA",
            39.045821,
            -77.487073,
            "us-east",
        ),
        (
            5,
            "hil",
            "Hillsboro, OR",
            "US",
            "Hillsboro, OR",
            45.54222,
            -122.951924,
            "us-west",
        ),
        (
            6,
            "sin",
            "Singapore",
            "SG",
            "Singapore",
            1.283333,
            103.833333,
            "ap-southeast",
        ),
    ];
    rows.into_iter()
        .map(
            |(id, name, description, country, city, latitude, longitude, zone)| Location {
                id,
                name: name.into(),
                description: description.into(),
                country: country.into(),
                city: city.into(),
                latitude,
                longitude,
                network_zone: zone.into(),
            },
        )
        .collect()
}

impl Seed {
    /// Reads and parses a seed file.
    pub fn load(path: &Path) -> Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read seed file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid seed file", path.display()))
    }

    /// Builds the world, checking the seed for the API's own rules; every
    /// problem is listed, each naming the object.
    pub fn into_world(self, now: u64, action_ms: u64) -> Result<World> {
        let locations = self.locations.unwrap_or_else(default_locations);
        let mut problems = Vec::new();
        let mut servers = BTreeMap::new();
        for s in self.servers {
            if !locations.iter().any(|l| l.name == s.location) {
                problems.push(format!(
                    "server {}: unknown location '{}'",
                    s.name, s.location
                ));
            }
            if servers.values().any(|o: &SimServer| o.name == s.name) || servers.contains_key(&s.id)
            {
                problems.push(format!("server {}: duplicate name or id {}", s.name, s.id));
            }
            let server = SimServer {
                id: s.id,
                name: s.name,
                location: s.location,
                status: s.status,
                created: timestamp(now),
                private_ip: s.private_ip,
                labels: s.labels,
                volumes: vec![],
            };
            servers.insert(server.id, server);
        }
        let mut volumes = BTreeMap::new();
        for v in self.volumes {
            if let Err(e) = rules::check_volume_name(&v.name) {
                problems.push(format!("volume {}: name {e}", v.name));
            }
            if let Err(e) = rules::check_volume_size(i64::from(v.size)) {
                problems.push(format!("volume {}: size {e}", v.name));
            }
            if volumes.values().any(|o: &SimVolume| o.name == v.name) || volumes.contains_key(&v.id)
            {
                problems.push(format!("volume {}: duplicate name or id {}", v.name, v.id));
            }
            let server = v
                .server
                .as_ref()
                .and_then(|n| servers.values_mut().find(|s| s.name == *n));
            let (server_id, location) = match (v.server.as_ref(), server) {
                (Some(_), Some(s)) => {
                    s.volumes.push(v.id);
                    if v.location.as_ref().is_some_and(|l| *l != s.location) {
                        problems.push(format!(
                            "volume {}: location differs from its server's",
                            v.name
                        ));
                    }
                    (Some(s.id), s.location.clone())
                }
                (Some(n), None) => {
                    problems.push(format!("volume {}: unknown server '{n}'", v.name));
                    continue;
                }
                (None, _) => match v.location {
                    Some(l) => (None, l),
                    None => {
                        problems.push(format!("volume {}: needs a server or a location", v.name));
                        continue;
                    }
                },
            };
            volumes.insert(
                v.id,
                SimVolume {
                    id: v.id,
                    name: v.name,
                    size: v.size,
                    server: server_id,
                    location,
                    labels: v.labels,
                    format: v.format,
                    protected: v.protected,
                    created: v.created.unwrap_or_else(|| timestamp(now)),
                    status: "available".into(),
                },
            );
        }
        if !problems.is_empty() {
            bail!(
                "the seed breaks the API's rules:\n  {}",
                problems.join("\n  ")
            );
        }
        let next_volume_id = self
            .next_volume_id
            .unwrap_or_else(|| volumes.keys().max().map_or(100_000_000, |m| m + 1));
        Ok(World {
            locations,
            servers,
            volumes,
            actions: BTreeMap::new(),
            next_volume_id,
            next_action_id: self.next_action_id.unwrap_or(1),
            action_ms,
            device_dir: None,
        })
    }
}

/// Reads a state file written by [`save_state`].
pub fn load_state(path: &Path) -> Result<World> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read state file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a simulator state file", path.display()))
}

/// Writes the world atomically to a state file.
pub fn save_state(path: &Path, world: &World) -> Result<()> {
    crate::fsutil::write_json_atomic(path, world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_problems_are_all_listed() {
        let seed: Seed = serde_json::from_str(
            r#"{"servers":[{"id":1,"name":"a","location":"nbg1"},{"id":2,"name":"a","location":"mars"}],
                "volumes":[{"id":5,"name":"-bad","size":5,"server":"a"},{"id":6,"name":"x","size":10,"server":"zz"}]}"#,
        )
        .unwrap();
        let err = seed.into_world(0, 10).unwrap_err().to_string();
        for want in [
            "unknown location 'mars'",
            "duplicate name",
            "volume -bad: name",
            "size must be",
            "unknown server 'zz'",
        ] {
            assert!(err.contains(want), "{want} missing from {err}");
        }
    }

    #[test]
    fn attached_seed_volumes_are_listed_on_their_server() {
        let seed: Seed = serde_json::from_str(
            r#"{"servers":[{"id":1,"name":"a","location":"hel1"}],
                "volumes":[{"id":5,"name":"v","size":10,"server":"a"}]}"#,
        )
        .unwrap();
        let w = seed.into_world(0, 10).unwrap();
        assert_eq!(w.servers[&1].volumes, vec![5]);
        assert_eq!(w.volumes[&5].location, "hel1");
        assert_eq!(w.next_volume_id, 6);
        assert!(w.invariant_violations().is_empty());
    }
}
