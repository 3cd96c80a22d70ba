//! The project's volumes and servers, read once with paged lists, as a
//! [`Source`] the shared observer looks things up in: a fleet run costs a
//! few pages, not a request per volume.

use std::collections::HashMap;
use std::time::Instant;

use crate::hcloud::types::{Server, Volume};
use crate::hcloud::{Client, Error, VolumeFilter};
use crate::reconcile::source::Source;

/// Volumes and servers by id and by name, and when the volumes were read.
#[derive(Debug)]
pub struct Index {
    read_at: Instant,
    volumes: HashMap<i64, Volume>,
    volume_names: HashMap<String, Vec<i64>>,
    servers: HashMap<i64, Server>,
    server_names: HashMap<String, i64>,
}

impl Index {
    /// Reads every volume and every server (paged lists of 50).
    ///
    /// # Errors
    /// A list request that failed.
    pub fn read(client: &Client) -> Result<Index, Error> {
        let servers = client.list_servers(None)?;
        let volumes = client.list_volumes(&VolumeFilter::default())?;
        Ok(Index::new(servers, volumes))
    }

    /// An index of these servers and volumes, read now.
    pub fn new(servers: Vec<Server>, volumes: Vec<Volume>) -> Index {
        let mut index = Index::default();
        for s in servers {
            index.server_names.insert(s.name.clone(), s.id);
            index.servers.insert(s.id, s);
        }
        index.replace_volumes(volumes);
        index
    }

    /// Replaces the volumes with a fresher list, read now (servers stay).
    pub fn replace_volumes(&mut self, volumes: Vec<Volume>) {
        self.read_at = Instant::now();
        self.volumes.clear();
        self.volume_names.clear();
        for v in volumes {
            self.volume_names
                .entry(v.name.clone())
                .or_default()
                .push(v.id);
            self.volumes.insert(v.id, v);
        }
    }

    /// The name of the server with this id (its id when it is not listed).
    pub fn server_name(&self, id: i64) -> String {
        self.servers
            .get(&id)
            .map_or_else(|| id.to_string(), |s| s.name.clone())
    }

    /// The volume with this id, as listed.
    pub fn get(&self, id: i64) -> Option<&Volume> {
        self.volumes.get(&id)
    }

    /// How long ago the volumes were read.
    pub fn age(&self) -> std::time::Duration {
        self.read_at.elapsed()
    }
}

impl Default for Index {
    fn default() -> Self {
        Index {
            read_at: Instant::now(),
            volumes: HashMap::new(),
            volume_names: HashMap::new(),
            servers: HashMap::new(),
            server_names: HashMap::new(),
        }
    }
}

impl Source for Index {
    fn volume(&self, id: i64) -> Result<Option<Volume>, Error> {
        Ok(self.volumes.get(&id).cloned())
    }
    fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, Error> {
        Ok(self
            .volume_names
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.volumes.get(id).cloned())
            .collect())
    }
    fn server(&self, id: i64) -> Result<Option<Server>, Error> {
        Ok(self.servers.get(&id).cloned())
    }
    fn server_named(&self, name: &str) -> Result<Option<Server>, Error> {
        Ok(self
            .server_names
            .get(name)
            .and_then(|id| self.servers.get(id).cloned()))
    }
}
