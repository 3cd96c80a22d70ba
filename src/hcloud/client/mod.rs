//! A blocking client for the volume part of the Hetzner Cloud API.
//!
//! Every request goes through `Client::call` ([`retry`]), which retries what can change
//! ([`retry_decision`]), waits out the rate limit, slows down when the budget
//! runs low, and counts what it sent ([`Stats`]). A client has one deadline:
//! every request timeout, retry pause and action wait fits inside it. No
//! string that leaves the client carries the token ([`Redactor`]), redirects
//! are never followed, and answers are read up to a size limit. Lookups
//! return `Ok(None)` for a missing object; mutations return the actions to
//! wait for, and [`Client::wait_for`] polls them in batches.
//!
//! One job per file: [`transport`] sends one request and classifies what
//! came back, [`retry`] decides whether and when to send it again,
//! [`pacing`] keeps within the rate limit, [`actions`] waits for actions;
//! this file holds the client and the API's resources.

mod actions;
mod pacing;
mod retry;
mod transport;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::code::ApiCode;
use super::config::Config;
use super::error::Error;
use super::policy::Redactor;
use super::types::{
    Action, CreateVolumeRequest, CreateVolumeResponse, Labels, Location, Meta, Server, Volume,
};
use pacing::Budget;
use transport::chain;

/// Largest page the API serves.
const PER_PAGE: u64 = 50;

/// What the client sent: requests by HTTP method, and retries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub requests: BTreeMap<String, u64>,
    pub retries: u64,
}

impl Stats {
    /// All requests sent.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// Filters of `GET /volumes`.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    pub name: Option<String>,
    pub label_selector: Option<String>,
    pub status: Vec<String>,
}

/// The result of a create: the volume and the actions to wait for.
#[derive(Debug, Clone)]
pub struct Created {
    pub volume: Volume,
    pub actions: Vec<Action>,
    /// True when a retried create found its own earlier attempt had succeeded.
    pub adopted: bool,
}

/// How a batch of actions ended ([`Client::wait_all`]).
#[derive(Debug, Clone, Default)]
pub struct Waited {
    /// The actions that finished, `success` or `error`.
    pub finished: Vec<Action>,
    /// Ids still running when the time ran out.
    pub running: Vec<i64>,
    pub waited: Duration,
}

/// The blocking API client.
pub struct Client {
    http: reqwest::blocking::Client,
    cfg: Config,
    deadline: Option<Instant>,
    redactor: Redactor,
    stats: Mutex<Stats>,
    rng: Mutex<StdRng>,
    budget: Mutex<Budget>,
}

impl Client {
    /// Builds a client; its deadline starts now. Fails when the TLS stack
    /// cannot start or the deadline is beyond what the clock can count.
    pub fn new(cfg: Config) -> Result<Client, Error> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(cfg.user_agent.clone())
            .build()
            .map_err(|e| Error::Config(format!("cannot start the HTTP client: {}", chain(&e))))?;
        let deadline = match cfg.deadline {
            None => None,
            Some(d) => Some(cfg.clock.now().checked_add(d).ok_or_else(|| {
                Error::Config(format!("a deadline of {}s is too far away", d.as_secs()))
            })?),
        };
        Ok(Client {
            http,
            redactor: Redactor::new(cfg.token.expose()),
            deadline,
            cfg,
            stats: Mutex::default(),
            rng: Mutex::new(StdRng::from_entropy()),
            budget: Mutex::default(),
        })
    }

    /// The time left before the deadline (`Duration::MAX` without one).
    pub fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(self.cfg.clock.now())
        })
    }

    /// The deadline error: what ran out while doing `what`.
    fn deadline_error(&self, waiting_for: String, last: Option<Error>) -> Error {
        Error::Deadline {
            waiting_for,
            budget: self.cfg.deadline.unwrap_or_default(),
            last: last.map(Box::new),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A copy of the request counters.
    pub fn stats(&self) -> Stats {
        self.stats.lock().expect("stats lock").clone()
    }

    // ---- volumes -------------------------------------------------------------

    /// Every volume matching the filter, following all pages.
    pub fn list_volumes(&self, filter: &VolumeFilter) -> Result<Vec<Volume>, Error> {
        let mut query = Vec::new();
        if let Some(n) = &filter.name {
            query.push(("name".to_string(), n.clone()));
        }
        if let Some(s) = &filter.label_selector {
            query.push(("label_selector".to_string(), s.clone()));
        }
        for s in &filter.status {
            query.push(("status".to_string(), s.clone()));
        }
        self.list_all("/volumes", "volumes", query)
    }

    /// The volume with this id, or `None`.
    pub fn get_volume(&self, id: i64) -> Result<Option<Volume>, Error> {
        self.get_one(&format!("/volumes/{id}"), "volume")
    }

    /// The volumes whose name is exactly `name` (the API's filter, checked
    /// again here: an answer with another name is never taken for it).
    pub fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, Error> {
        let filter = VolumeFilter {
            name: Some(name.to_string()),
            ..VolumeFilter::default()
        };
        let mut found = self.list_volumes(&filter)?;
        found.retain(|v| v.name == name);
        Ok(found)
    }

    /// The volume with exactly this name, or `None` (the first, should the
    /// API ever answer with several).
    pub fn volume_by_name(&self, name: &str) -> Result<Option<Volume>, Error> {
        Ok(self.volumes_named(name)?.into_iter().next())
    }

    /// Creates a volume. If a retried attempt finds the name taken by a volume
    /// that is exactly the one asked for (an earlier attempt succeeded but its
    /// answer was lost), that volume is adopted instead of failing.
    pub fn create_volume(&self, req: &CreateVolumeRequest) -> Result<Created, Error> {
        let body = serde_json::to_value(req).expect("request serialises");
        match self.call(Method::POST, "/volumes", &[], Some(&body)) {
            Ok(answer) => {
                let r: CreateVolumeResponse = decode(answer.body, "POST /volumes")?;
                let mut actions = vec![r.action];
                actions.extend(r.next_actions);
                Ok(Created {
                    volume: r.volume,
                    actions,
                    adopted: false,
                })
            }
            Err(e) if e.attempts() > 1 && e.is(&ApiCode::UniquenessError) => {
                let Some(existing) = self.volume_by_name(&req.name)? else {
                    return Err(e);
                };
                if !self.is_what_was_asked(&existing, req)? {
                    return Err(e);
                }
                let actions = self.running_actions_of_volume(existing.id)?;
                Ok(Created {
                    volume: existing,
                    actions,
                    adopted: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn is_what_was_asked(&self, v: &Volume, req: &CreateVolumeRequest) -> Result<bool, Error> {
        let location_ok = match (&req.location, req.server) {
            (Some(loc), _) => v.location.name == *loc || v.location.id.to_string() == *loc,
            (None, Some(server)) => match self.get_server(server)? {
                Some(s) => s.location.name == v.location.name,
                None => false,
            },
            (None, None) => true,
        };
        let labels_ok = req.labels.as_ref().is_none_or(|l| *l == v.labels);
        let format_ok = req.format.is_none() || req.format == v.format;
        Ok(v.size == req.size && location_ok && labels_ok && format_ok)
    }

    /// Renames a volume and/or replaces its labels.
    pub fn update_volume(
        &self,
        id: i64,
        name: Option<&str>,
        labels: Option<&Labels>,
    ) -> Result<Volume, Error> {
        let mut body = serde_json::Map::new();
        if let Some(n) = name {
            body.insert("name".into(), json!(n));
        }
        if let Some(l) = labels {
            body.insert("labels".into(), json!(l));
        }
        let answer = self.call(
            Method::PUT,
            &format!("/volumes/{id}"),
            &[],
            Some(&Value::Object(body)),
        )?;
        field(answer.body, "volume", "PUT /volumes")
    }

    /// Deletes a volume (it must be detached and unprotected).
    pub fn delete_volume(&self, id: i64) -> Result<(), Error> {
        self.call(Method::DELETE, &format!("/volumes/{id}"), &[], None)
            .map(|_| ())
    }

    /// Starts attaching a volume to a server.
    pub fn attach_volume(
        &self,
        id: i64,
        server: i64,
        automount: Option<bool>,
    ) -> Result<Action, Error> {
        let mut body = json!({ "server": server });
        if let Some(a) = automount {
            body["automount"] = json!(a);
        }
        self.volume_action(id, "attach", Some(&body))
    }

    /// Starts detaching a volume from its server.
    pub fn detach_volume(&self, id: i64) -> Result<Action, Error> {
        self.volume_action(id, "detach", Some(&json!({})))
    }

    /// Starts growing a volume to `size` GB.
    pub fn resize_volume(&self, id: i64, size: u32) -> Result<Action, Error> {
        self.volume_action(id, "resize", Some(&json!({ "size": size })))
    }

    /// Turns delete protection on or off.
    pub fn change_volume_protection(&self, id: i64, delete: bool) -> Result<Action, Error> {
        self.volume_action(id, "change_protection", Some(&json!({ "delete": delete })))
    }

    /// Every action of one volume (paged).
    pub fn actions_of_volume(&self, id: i64) -> Result<Vec<Action>, Error> {
        self.list_all(&format!("/volumes/{id}/actions"), "actions", Vec::new())
    }

    /// The actions of one volume that are still running.
    pub fn running_actions_of_volume(&self, id: i64) -> Result<Vec<Action>, Error> {
        self.list_all(
            &format!("/volumes/{id}/actions"),
            "actions",
            vec![("status".into(), "running".into())],
        )
    }

    fn volume_action(&self, id: i64, action: &str, body: Option<&Value>) -> Result<Action, Error> {
        let path = format!("/volumes/{id}/actions/{action}");
        let answer = self.call(Method::POST, &path, &[], body)?;
        field(answer.body, "action", &path)
    }

    // ---- servers, locations, actions ----------------------------------------

    /// Every server, or those with this exact name.
    pub fn list_servers(&self, name: Option<&str>) -> Result<Vec<Server>, Error> {
        let query = name
            .map(|n| vec![("name".to_string(), n.to_string())])
            .unwrap_or_default();
        self.list_all("/servers", "servers", query)
    }

    /// The server with this id, or `None`.
    pub fn get_server(&self, id: i64) -> Result<Option<Server>, Error> {
        self.get_one(&format!("/servers/{id}"), "server")
    }

    /// The server with exactly this name, or `None`.
    pub fn server_by_name(&self, name: &str) -> Result<Option<Server>, Error> {
        Ok(self
            .list_servers(Some(name))?
            .into_iter()
            .find(|s| s.name == name))
    }

    /// Every location.
    pub fn list_locations(&self) -> Result<Vec<Location>, Error> {
        self.list_all("/locations", "locations", Vec::new())
    }

    /// One action by id, or `None`.
    pub fn get_action(&self, id: i64) -> Result<Option<Action>, Error> {
        self.get_one(&format!("/actions/{id}"), "action")
    }

    fn get_one<T: DeserializeOwned>(&self, path: &str, key: &str) -> Result<Option<T>, Error> {
        match self.call(Method::GET, path, &[], None) {
            Ok(answer) => field(answer.body, key, path).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        query: Vec<(String, String)>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut page = 1;
        for pages in 1.. {
            let mut q = query.clone();
            q.push(("page".into(), page.to_string()));
            q.push(("per_page".into(), PER_PAGE.to_string()));
            let mut body = self.call(Method::GET, path, &q, None)?.body;
            let meta: Meta = decode(take(&mut body, "meta"), path)?;
            let items: Vec<T> = field(body, key, path)?;
            out.extend(items);
            match meta.pagination.next_page {
                Some(_) if pages >= self.cfg.max_pages => {
                    return Err(Error::Pagination {
                        request: format!("GET {path}"),
                        pages,
                    })
                }
                Some(next) if next > page => page = next,
                _ => break,
            }
        }
        Ok(out)
    }
}

fn decode<T: DeserializeOwned>(body: Value, what: &str) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::UnexpectedResponse {
        request: what.to_string(),
        status: 200,
        excerpt: format!("answer does not have the expected shape: {e}"),
    })
}

/// Moves `key` out of an object (`Null` when absent).
fn take(body: &mut Value, key: &str) -> Value {
    body.get_mut(key).map(Value::take).unwrap_or(Value::Null)
}

fn field<T: DeserializeOwned>(mut body: Value, key: &str, what: &str) -> Result<T, Error> {
    decode(take(&mut body, key), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcloud::backoff::RetryPolicy;
    use crate::hcloud::Environment;

    #[test]
    fn transport_errors_do_not_carry_the_token() {
        let cfg = Config {
            connect_timeout: Duration::from_millis(200),
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..Config::resolve(
                Some("s3cr3t-token".into()),
                Some("http://127.0.0.1:1/v1".into()),
                false,
                &Environment::default(),
            )
            .unwrap()
        };
        let err = Client::new(cfg).unwrap().get_volume(1).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("GET /volumes/1"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
