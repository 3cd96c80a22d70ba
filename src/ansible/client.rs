//! The API client of a module run, from its options and the environment.

use std::time::Duration;

use crate::hcloud::{Client, Config, Environment, Error};

/// What a module run's API client is made of.
pub struct RunClient {
    pub token: Option<String>,
    pub endpoint: Option<String>,
    pub allow_insecure_http: bool,
    /// Seconds for the whole run.
    pub wait_timeout: u64,
    /// Seconds for one request.
    pub request_timeout: u64,
    /// Requests this run may have in flight at once beyond one.
    pub in_flight: u64,
}

impl RunClient {
    /// The client: one deadline for the whole run (every request, retry
    /// and wait fits in `wait_timeout`), and pacing that keeps room for
    /// every request in flight.
    ///
    /// # Errors
    /// A configuration that cannot work (no token, a malformed endpoint).
    pub fn build(self, env: &Environment) -> Result<Client, Error> {
        let cfg = Config::resolve(self.token, self.endpoint, self.allow_insecure_http, env)?;
        Client::new(Config {
            deadline: Some(Duration::from_secs(self.wait_timeout)),
            request_timeout: Duration::from_secs(self.request_timeout),
            pace_below: cfg.pace_below + self.in_flight,
            ..cfg
        })
    }
}
