//! Where volumes and servers are looked up ([`Source`]): the API one request
//! at a time, or lists read once for a whole fleet. Both modules plan from
//! it, and a run resolves a killed run's journal entries with it.

use crate::hcloud::types::{Server, Volume};
use crate::hcloud::{Client, Error};

/// Where volumes and servers are looked up.
pub trait Source {
    /// The volume with this id, or `None`.
    ///
    /// # Errors
    /// The request failed.
    fn volume(&self, id: i64) -> Result<Option<Volume>, Error>;
    /// The volumes named exactly `name`.
    ///
    /// # Errors
    /// The request failed.
    fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, Error>;
    /// The server with this id, or `None`.
    ///
    /// # Errors
    /// The request failed.
    fn server(&self, id: i64) -> Result<Option<Server>, Error>;
    /// The server named exactly `name`, or `None`.
    ///
    /// # Errors
    /// The request failed.
    fn server_named(&self, name: &str) -> Result<Option<Server>, Error>;
}

impl Source for Client {
    fn volume(&self, id: i64) -> Result<Option<Volume>, Error> {
        self.get_volume(id)
    }
    fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, Error> {
        Client::volumes_named(self, name)
    }
    fn server(&self, id: i64) -> Result<Option<Server>, Error> {
        self.get_server(id)
    }
    fn server_named(&self, name: &str) -> Result<Option<Server>, Error> {
        self.server_by_name(name)
    }
}
