//! A blocking client for the volume part of the Hetzner Cloud API.
//!
//! Every request goes through [`Client::call`], which retries what can change
//! ([`retry_decision`]), waits out the rate limit, slows down when the budget
//! runs low, and counts what it sent ([`Stats`]). A client has one deadline:
//! every request timeout, retry pause and action wait fits inside it. No
//! string that leaves the client carries the token ([`Redactor`]), redirects
//! are never followed, and answers are read up to a size limit. Lookups
//! return `Ok(None)` for a missing object; mutations return the actions to
//! wait for, and [`Client::wait_for`] polls them in batches.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::blocking::Response;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::backoff::{retry_decision, Backoff, Retry, RetryPolicy};
use super::clock::{Clock, SystemClock};
use super::code::ApiCode;
use super::environment::Environment;
use super::error::{ApiError, Error, TransportKind};
use super::policy::{check_endpoint, check_token, Redactor};
use super::types::{
    Action, CreateVolumeRequest, CreateVolumeResponse, Labels, Location, Meta, Server, Volume,
};

/// The public API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";
/// Largest page the API serves.
const PER_PAGE: u64 = 50;
/// The API accepts at most this many ids in one `GET /actions?id=…`.
const ACTION_BATCH: usize = 25;
/// The default budget of one request, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An API token. It never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// How the client connects, retries, polls and how long it may take.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL including `/v1`, without a trailing slash (checked by [`check_endpoint`]).
    pub endpoint: String,
    pub token: Token,
    pub connect_timeout: Duration,
    /// Budget for one request, answer included (never past the deadline).
    pub request_timeout: Duration,
    /// The whole client's time, from [`Client::new`]: `None` for no deadline.
    pub deadline: Option<Duration>,
    pub retry: RetryPolicy,
    /// Delay between polls of running actions.
    pub poll: Backoff,
    pub user_agent: String,
    /// With fewer requests left than this, space requests one refill apart (0: never).
    pub pace_below: u64,
    /// At most this many pages of one list.
    pub max_pages: u32,
    /// Answers larger than this are refused.
    pub max_body_bytes: u64,
    /// Time and waiting (tests record the waits).
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// A configuration from explicit values, falling back to the
    /// environment's `HCLOUD_TOKEN` and `HCLOUD_ENDPOINT` like the official
    /// tools. The endpoint and the token are checked here, before anything
    /// is sent ([`check_endpoint`], [`check_token`]).
    pub fn resolve(
        token: Option<String>,
        endpoint: Option<String>,
        allow_insecure_http: bool,
        env: &Environment,
    ) -> Result<Config, Error> {
        let token = token
            .filter(|t| !t.is_empty())
            .map(Token::new)
            .or_else(|| env.token.clone())
            .ok_or_else(|| {
                Error::Config("no API token: set the api_token option or the HCLOUD_TOKEN environment variable".into())
            })?;
        check_token(token.expose())?;
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .or_else(|| env.endpoint.clone())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let endpoint = check_endpoint(&endpoint, allow_insecure_http || env.allow_insecure_http)?;
        let poll_base = env.poll_interval.unwrap_or(Duration::from_millis(500));
        Ok(Config {
            endpoint,
            token,
            connect_timeout: Duration::from_secs(10),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            deadline: None,
            retry: RetryPolicy::with_base(env.retry_base.unwrap_or(Duration::from_secs(1))),
            poll: Backoff::Exponential {
                base: poll_base,
                multiplier: 1.5,
                cap: Duration::from_secs(5).max(poll_base),
                jitter: false,
            },
            user_agent: format!("kbv3/{}", env!("CARGO_PKG_VERSION")),
            pace_below: 5,
            max_pages: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        })
    }
}

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

/// The request budget as the last answer reported it, counted down by the
/// requests sent since.
#[derive(Debug, Default)]
struct Budget {
    remaining: Option<u64>,
    refill: Duration,
    /// The earliest time the next paced request may go.
    next_slot: Option<Instant>,
}

/// One answer: status, correlation id and JSON body (`Null` for 204).
struct Answer {
    body: Value,
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

    /// Waits until every action has finished, polling the running ones in
    /// batches of 25 ids. An action that ends in `error` fails the wait with
    /// its code and message; an action the API does not return fails it at
    /// once. When `timeout` (or the client's deadline) runs out, the ids
    /// still running are reported. Returns the finished actions.
    pub fn wait_for(&self, actions: &[Action], timeout: Duration) -> Result<Vec<Action>, Error> {
        let waited = self.wait_all(actions, timeout)?;
        if !waited.running.is_empty() {
            return Err(Error::ActionTimeout {
                running: waited.running,
                waited: waited.waited,
            });
        }
        if let Some(failed) = waited.finished.iter().find(|a| a.status == "error") {
            return Err(self.action_error(failed));
        }
        Ok(waited.finished)
    }

    /// Waits for many actions at once (batched polls of 25 ids) and reports
    /// each one's end: finished (`success` or `error`) or still running when
    /// `timeout` or the deadline ran out. Only a failed poll is an error.
    pub fn wait_all(&self, actions: &[Action], timeout: Duration) -> Result<Waited, Error> {
        let clock = &self.cfg.clock;
        let started = clock.now();
        let timeout = timeout.min(self.remaining());
        let mut done: BTreeMap<i64, Action> = BTreeMap::new();
        let mut running: Vec<i64> = Vec::new();
        for a in actions {
            if a.is_running() {
                running.push(a.id);
            } else {
                done.insert(a.id, a.clone());
            }
        }
        let mut polls = 0;
        while !running.is_empty() {
            let pause = self
                .cfg
                .poll
                .delay(polls, &mut *self.rng.lock().expect("rng lock"));
            let waited = clock.now().saturating_duration_since(started);
            if waited + pause > timeout {
                return Ok(Waited {
                    finished: done.into_values().collect(),
                    running,
                    waited,
                });
            }
            clock.sleep(pause);
            polls += 1;
            for chunk in running.clone().chunks(ACTION_BATCH) {
                let query = chunk
                    .iter()
                    .map(|id| ("id".to_string(), id.to_string()))
                    .collect();
                let found: Vec<Action> = self.list_all("/actions", "actions", query)?;
                let missing: Vec<i64> = chunk
                    .iter()
                    .filter(|id| !found.iter().any(|a| a.id == **id))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::ActionsNotFound { ids: missing });
                }
                for a in found.into_iter().filter(|a| !a.is_running()) {
                    running.retain(|id| *id != a.id);
                    done.insert(a.id, a);
                }
            }
        }
        Ok(Waited {
            finished: actions
                .iter()
                .filter_map(|a| done.get(&a.id).cloned())
                .collect(),
            running,
            waited: clock.now().saturating_duration_since(started),
        })
    }

    /// The error of an action that ended in `error`.
    pub fn action_error(&self, failed: &Action) -> Error {
        let err = failed.error.clone().unwrap_or(super::types::ActionError {
            code: ApiCode::ActionFailed.to_string(),
            message: "action failed".into(),
        });
        Error::ActionFailed {
            action_id: failed.id,
            command: failed.command.clone(),
            code: err.code,
            message: self.redactor.scrub(&err.message),
        }
    }

    // ---- transport -------------------------------------------------------------

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

    /// Sends a request. Retries what can change, within the retry budget and
    /// the deadline; a 429 is waited out for as long as the deadline allows,
    /// without counting against the retry budget.
    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        let request_line = format!("{method} {path}");
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut brief_retries = 0u32;
        let mut limited = 0u32;
        // An earlier attempt whose answer was lost may have taken effect.
        let mut unsure = false;
        loop {
            attempts += 1;
            let SendError { error, wait_hint } =
                match self.send_once(method.clone(), &request_line, path, query, body) {
                    Ok(answer) => return Ok(answer),
                    Err(failed) => *failed,
                };
            let rate_limited = error.is(&ApiCode::RateLimitExceeded);
            let allowed = match retry_decision(&error) {
                Retry::No => false,
                // Without a deadline, 429s count against the retries like the rest.
                _ if rate_limited && self.deadline.is_some() => true,
                Retry::Backoff => retries < self.cfg.retry.max_retries,
                Retry::Briefly => {
                    brief_retries += 1;
                    brief_retries <= self.cfg.retry.max_unavailable_retries
                        && retries < self.cfg.retry.max_retries
                }
            };
            let give_up = |error: Error| {
                if attempts > 1 {
                    Error::RetriesExhausted {
                        attempts,
                        last: Box::new(error),
                        unsure,
                    }
                } else {
                    error
                }
            };
            if !allowed {
                return Err(give_up(error));
            }
            let backoff = self
                .cfg
                .retry
                .backoff
                .delay(retries, &mut *self.rng.lock().expect("rng lock"));
            let pause = match &wait_hint {
                Some(hint) if rate_limited => {
                    limited += 1;
                    self.rate_limit_pause(hint, limited)
                }
                _ => backoff,
            };
            if pause >= self.remaining() {
                return Err(match wait_hint.filter(|_| rate_limited) {
                    Some(hint) => Error::RateLimited {
                        request: request_line,
                        next_in: hint.next_in,
                        full_at: hint.full_at,
                    },
                    None => self
                        .deadline_error(format!("retrying {request_line}"), Some(give_up(error))),
                });
            }
            unsure |= error.outcome_unknown();
            if !rate_limited || self.deadline.is_none() {
                retries += 1;
            }
            self.stats.lock().expect("stats lock").retries += 1;
            self.cfg.clock.sleep(pause);
        }
    }

    /// Takes one request from the budget the last answers reported, shared
    /// by every thread using this client. With fewer than `pace_below` left,
    /// requests are spaced one refill apart (each thread reserves its own
    /// slot), so concurrent workers slow down together instead of running
    /// into 429s. Returns how long to wait before sending.
    fn reserve_slot(&self) -> Duration {
        let now = self.cfg.clock.now();
        let mut budget = self.budget.lock().expect("budget lock");
        let Some(left) = budget.remaining else {
            return Duration::ZERO;
        };
        budget.remaining = Some(left.saturating_sub(1));
        if left >= self.cfg.pace_below {
            return Duration::ZERO;
        }
        let slot = budget.next_slot.filter(|s| *s > now).unwrap_or(now);
        budget.next_slot = Some(slot + budget.refill);
        slot - now
    }

    /// The wait after the `n`-th 429 in a row: at least one refill; when
    /// 429s keep coming (many clients share the budget), a draw up to
    /// 2^(n-1) refills, never past the time the bucket is full again nor a
    /// minute, so that the clients spread out instead of all coming back at
    /// the next refill.
    fn rate_limit_pause(&self, hint: &RateHint, n: u32) -> Duration {
        let low = hint.next_in;
        let high = low
            .saturating_mul(1 << (n - 1).min(6))
            .min(hint.until_full.unwrap_or(Duration::MAX))
            .min(Duration::from_secs(60))
            .max(low);
        if high == low {
            return low;
        }
        Duration::from_secs_f64(
            self.rng
                .lock()
                .expect("rng lock")
                .gen_range(low.as_secs_f64()..=high.as_secs_f64()),
        )
    }

    fn send_once(
        &self,
        method: Method,
        request_line: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Box<SendError>> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(SendError::boxed(
                self.deadline_error(format!("sending {request_line}"), None),
            ));
        }
        let pause = self.reserve_slot();
        if !pause.is_zero() {
            self.cfg.clock.sleep(pause.min(remaining));
        }
        *self
            .stats
            .lock()
            .expect("stats lock")
            .requests
            .entry(method.to_string())
            .or_default() += 1;
        let mut req = self
            .http
            .request(method, format!("{}{}", self.cfg.endpoint, path))
            .bearer_auth(self.cfg.token.expose())
            .header("Accept", "application/json")
            .timeout(self.cfg.request_timeout.min(remaining));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .map_err(|e| SendError::boxed(self.transport_error(request_line, &e)))?;
        let pacing = self.rate_limit(&resp);
        if let Some((remaining, refill)) = pacing.as_ref().and_then(|p| p.budget) {
            let mut budget = self.budget.lock().expect("budget lock");
            budget.remaining = Some(remaining);
            budget.refill = refill;
        }
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Err(SendError::boxed(Error::Redirect {
                request: request_line.to_string(),
                status,
                location: header(&resp, "location").map(|l| excerpt(&self.redactor.scrub(&l))),
            }));
        }
        let correlation_id =
            header(&resp, "x-correlation-id").map(|c| excerpt(&self.redactor.scrub(&c)));
        let is_json =
            header(&resp, "content-type").is_some_and(|c| c.starts_with("application/json"));
        let text = self.read_body(request_line, resp)?;
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Answer { body: Value::Null });
            }
            // Every string of the answer is scrubbed before anything keeps it.
            return serde_json::from_str(&text)
                .map(|body| Answer {
                    body: self.redactor.scrub_json(body),
                })
                .map_err(|_| {
                    SendError::boxed(Error::UnexpectedResponse {
                        request: request_line.to_string(),
                        status,
                        excerpt: excerpt(&self.redactor.scrub(&text)),
                    })
                });
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: String,
            message: String,
            #[serde(default)]
            details: Option<Value>,
        }
        let error = match serde_json::from_str::<Envelope>(&text) {
            Ok(env) if is_json => Error::Api(ApiError {
                status,
                code: ApiCode::parse(&env.error.code),
                message: excerpt(&self.redactor.scrub(&env.error.message)),
                details: env.error.details.map(|d| self.redactor.scrub_json(d)),
                correlation_id,
            }),
            _ => Error::UnexpectedResponse {
                request: request_line.to_string(),
                status,
                excerpt: excerpt(&self.redactor.scrub(&text)),
            },
        };
        Err(Box::new(SendError {
            error,
            wait_hint: pacing.and_then(|p| p.limited),
        }))
    }

    /// Reads an answer's body, refusing one larger than the limit.
    fn read_body(&self, request_line: &str, resp: Response) -> Result<String, Box<SendError>> {
        let limit = self.cfg.max_body_bytes;
        let too_large = || {
            SendError::boxed(Error::TooLarge {
                request: request_line.to_string(),
                limit,
            })
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        resp.take(limit + 1).read_to_end(&mut bytes).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                TransportKind::Timeout
            } else {
                TransportKind::Connection
            };
            SendError::boxed(Error::Transport {
                request: request_line.to_string(),
                reason: self
                    .redactor
                    .scrub(&format!("reading the answer failed: {}", chain(&e))),
                kind,
            })
        })?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads the `RateLimit-*` headers. One request refills in
    /// `(RateLimit-Reset − now) / (limit − remaining)` (the bucket refills
    /// evenly until it is full at `RateLimit-Reset`), or 3600 s / limit when
    /// the bucket is full. After a 429: wait that long (never past
    /// `RateLimit-Reset`). After a success with few requests left: wait that
    /// long before the next request.
    fn rate_limit(&self, resp: &Response) -> Option<Pacing> {
        let num = |name: &str| header(resp, name).and_then(|v| v.trim().parse::<u64>().ok());
        let limit = num("ratelimit-limit")?.max(1);
        let remaining = num("ratelimit-remaining")?;
        let reset = num("ratelimit-reset");
        let until_reset =
            reset.map(|r| Duration::from_secs(r.saturating_sub(crate::clock::now_ms() / 1000)));
        let missing = limit.saturating_sub(remaining);
        let refill = match until_reset {
            Some(u) if missing > 0 => u / missing.min(u32::MAX as u64) as u32,
            _ => Duration::from_secs_f64(3600.0 / limit as f64),
        };
        if resp.status().as_u16() == 429 {
            return Some(Pacing {
                budget: Some((remaining, refill)),
                limited: Some(RateHint {
                    next_in: until_reset
                        .map_or(refill, |u| refill.min(u))
                        .max(Duration::from_millis(100)),
                    until_full: until_reset,
                    full_at: reset.map(|r| crate::clock::rfc3339(r.saturating_mul(1000))),
                }),
            });
        }
        Some(Pacing {
            budget: Some((remaining, refill)),
            limited: None,
        })
    }

    /// A transport failure, classified: what a retry can change, and what it cannot.
    fn transport_error(&self, request: &str, e: &reqwest::Error) -> Error {
        let (kind, reason) = if e.is_connect() && !is_tls(e) {
            (
                TransportKind::Connect,
                format!("cannot connect: {}", chain(e)),
            )
        } else if e.is_timeout() {
            (
                TransportKind::Timeout,
                "no answer within the request timeout".to_string(),
            )
        } else if is_tls(e) {
            (
                TransportKind::Permanent,
                format!(
                    "TLS failed, not retried (is the certificate valid for this host?): {}",
                    chain(e)
                ),
            )
        } else if e.is_builder() || e.is_redirect() {
            (
                TransportKind::Permanent,
                format!("the request cannot be sent, not retried: {}", chain(e)),
            )
        } else {
            (
                TransportKind::Connection,
                format!("request failed: {}", chain(e)),
            )
        };
        Error::Transport {
            request: request.to_string(),
            reason: self.redactor.scrub(&reason),
            kind,
        }
    }
}

/// What the `RateLimit-*` headers of one answer ask for.
struct Pacing {
    /// Requests left, and how long one takes to refill.
    budget: Option<(u64, Duration)>,
    /// After a 429.
    limited: Option<RateHint>,
}

/// When a rate-limited client may send again.
#[derive(Debug, Clone)]
struct RateHint {
    /// One request's refill.
    next_in: Duration,
    /// Until the bucket is full (`RateLimit-Reset`).
    until_full: Option<Duration>,
    full_at: Option<String>,
}

struct SendError {
    error: Error,
    wait_hint: Option<RateHint>,
}

impl SendError {
    fn boxed(error: Error) -> Box<Self> {
        Box::new(SendError {
            error,
            wait_hint: None,
        })
    }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// True when a TLS problem is behind the error (a certificate, a handshake):
/// a rustls error somewhere in its sources, or, where a layer in between
/// kept only its text, rustls' words for one.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let text = chain(e).to_ascii_lowercase();
    if [
        "invalid peer certificate",
        "tls handshake",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .iter()
    .any(|w| text.contains(w))
    {
        return true;
    }
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// An error and its sources on one line, without the URL.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// The start of a text, for error messages: at most 120 characters.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
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

    #[test]
    fn token_is_never_printed() {
        let cfg = Config::resolve(
            Some("s3cr3t-token".into()),
            Some("http://127.0.0.1:1/v1/".into()),
            false,
            &Environment::default(),
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(cfg.endpoint, "http://127.0.0.1:1/v1");
    }

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
