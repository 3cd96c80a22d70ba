//! A blocking client for the volume part of the Hetzner Cloud API.
//!
//! Every request goes through [`Client::call`], which retries transient
//! failures ([`retry_decision`]), slows down when the rate-limit budget runs
//! low, and counts what it sent ([`Stats`]). Lookups return `Ok(None)` for a
//! missing object; mutations return the actions to wait for, and
//! [`Client::wait_for`] polls them in batches until they finish.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::blocking::Response;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::backoff::{retry_decision, Backoff, Retry, RetryPolicy};
use super::code::ApiCode;
use super::error::{ApiError, Error};
use super::types::{
    Action, CreateVolumeRequest, CreateVolumeResponse, Labels, Location, Meta, Server, Volume,
};

/// The public API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";
/// Largest page the API serves.
const PER_PAGE: u64 = 50;
/// The API accepts at most this many ids in one `GET /actions?id=…`.
const ACTION_BATCH: usize = 25;
/// Below this many remaining requests the client paces itself.
const RATE_LOW_WATER: u64 = 5;

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

/// How the client connects, retries and polls.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL including `/v1`, without a trailing slash.
    pub endpoint: String,
    pub token: Token,
    pub connect_timeout: Duration,
    /// Budget for one whole request, answer included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Delay between polls of running actions.
    pub poll: Backoff,
    pub user_agent: String,
}

impl Config {
    /// A configuration from explicit values, falling back to `HCLOUD_TOKEN`
    /// and `HCLOUD_ENDPOINT` like the official tools.
    ///
    /// Two variables tune the pacing for tests and slow links:
    /// `KBV3_RETRY_BASE_MS` (first retry delay, default 1000) and
    /// `KBV3_POLL_INTERVAL_MS` (first poll delay, default 500).
    pub fn resolve(token: Option<String>, endpoint: Option<String>) -> Result<Config, Error> {
        let token = token
            .filter(|t| !t.is_empty())
            .or_else(|| std::env::var("HCLOUD_TOKEN").ok().filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                Error::Config("no API token: set the api_token option or the HCLOUD_TOKEN environment variable".into())
            })?;
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .or_else(|| {
                std::env::var("HCLOUD_ENDPOINT")
                    .ok()
                    .filter(|e| !e.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let ms = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(default, |v| v.max(1))
        };
        let poll_base = Duration::from_millis(ms("KBV3_POLL_INTERVAL_MS", 500));
        Ok(Config {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: Token::new(token),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::with_base(Duration::from_millis(ms("KBV3_RETRY_BASE_MS", 1000))),
            poll: Backoff::Exponential {
                base: poll_base,
                multiplier: 1.5,
                cap: Duration::from_secs(5).max(poll_base),
                jitter: false,
            },
            user_agent: format!("kbv3/{}", env!("CARGO_PKG_VERSION")),
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

/// The blocking API client.
pub struct Client {
    http: reqwest::blocking::Client,
    cfg: Config,
    stats: Mutex<Stats>,
    rng: Mutex<StdRng>,
}

/// One answer: status, correlation id and JSON body (`Null` for 204).
struct Answer {
    body: Value,
}

impl Client {
    /// Builds a client. Fails only when the TLS stack cannot start.
    pub fn new(cfg: Config) -> Result<Client, Error> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .user_agent(cfg.user_agent.clone())
            .build()
            .map_err(|e| Error::Config(format!("cannot start the HTTP client: {}", chain(&e))))?;
        Ok(Client {
            http,
            cfg,
            stats: Mutex::default(),
            rng: Mutex::new(StdRng::from_entropy()),
        })
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
        let mut attempts = 0;
        let result = self.call_counted(Method::POST, "/volumes", &[], Some(&body), &mut attempts);
        match result {
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
            Err(e) if attempts > 1 && e.is(&ApiCode::UniquenessError) => {
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
    /// its code and message; when `timeout` runs out, the ids still running
    /// are reported. Returns the finished actions.
    pub fn wait_for(&self, actions: &[Action], timeout: Duration) -> Result<Vec<Action>, Error> {
        let started = Instant::now();
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
            if started.elapsed() + pause > timeout {
                return Err(Error::ActionTimeout {
                    running,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(pause);
            polls += 1;
            for chunk in running.clone().chunks(ACTION_BATCH) {
                let query = chunk
                    .iter()
                    .map(|id| ("id".to_string(), id.to_string()))
                    .collect();
                let found: Vec<Action> = self.list_all("/actions", "actions", query)?;
                for a in found.into_iter().filter(|a| !a.is_running()) {
                    running.retain(|id| *id != a.id);
                    done.insert(a.id, a);
                }
            }
        }
        if let Some(failed) = done.values().find(|a| a.status == "error") {
            let err = failed.error.clone().unwrap_or(super::types::ActionError {
                code: ApiCode::ActionFailed.to_string(),
                message: "action failed".into(),
            });
            return Err(Error::ActionFailed {
                action_id: failed.id,
                command: failed.command.clone(),
                code: err.code,
                message: err.message,
            });
        }
        Ok(actions
            .iter()
            .filter_map(|a| done.get(&a.id).cloned())
            .collect())
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
        loop {
            let mut q = query.clone();
            q.push(("page".into(), page.to_string()));
            q.push(("per_page".into(), PER_PAGE.to_string()));
            let mut body = self.call(Method::GET, path, &q, None)?.body;
            let meta: Meta = decode(take(&mut body, "meta"), path)?;
            let items: Vec<T> = field(body, key, path)?;
            out.extend(items);
            match meta.pagination.next_page {
                Some(next) if next > page => page = next,
                _ => return Ok(out),
            }
        }
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        let mut attempts = 0;
        self.call_counted(method, path, query, body, &mut attempts)
    }

    /// Sends a request with retries; `attempts` tells the caller how many were made.
    fn call_counted(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        attempts: &mut u32,
    ) -> Result<Answer, Error> {
        let mut retries = 0u32;
        let mut brief_retries = 0u32;
        loop {
            *attempts += 1;
            let SendError { error, wait_hint } =
                match self.send_once(method.clone(), path, query, body) {
                    Ok(answer) => return Ok(answer),
                    Err(failed) => *failed,
                };
            let allowed = match retry_decision(&error) {
                Retry::No => false,
                Retry::Backoff => retries < self.cfg.retry.max_retries,
                Retry::Briefly => {
                    brief_retries += 1;
                    brief_retries <= self.cfg.retry.max_unavailable_retries
                        && retries < self.cfg.retry.max_retries
                }
            };
            if !allowed {
                return Err(if *attempts > 1 {
                    Error::RetriesExhausted {
                        attempts: *attempts,
                        last: Box::new(error),
                    }
                } else {
                    error
                });
            }
            let mut pause = self
                .cfg
                .retry
                .backoff
                .delay(retries, &mut *self.rng.lock().expect("rng lock"));
            if let Some(hint) = wait_hint {
                pause = pause.max(hint);
            }
            retries += 1;
            self.stats.lock().expect("stats lock").retries += 1;
            std::thread::sleep(pause);
        }
    }

    fn send_once(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Box<SendError>> {
        let request_line = format!("{method} {path}");
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
            .header("Accept", "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .map_err(|e| SendError::boxed(transport_error(&request_line, &e)))?;
        let pacing = self.rate_limit_pause(&resp);
        let status = resp.status().as_u16();
        let correlation_id = header(&resp, "x-correlation-id");
        let is_json =
            header(&resp, "content-type").is_some_and(|c| c.starts_with("application/json"));
        let text = resp
            .text()
            .map_err(|e| SendError::boxed(transport_error(&request_line, &e)))?;
        if (200..300).contains(&status) {
            if let Some(p) = pacing {
                std::thread::sleep(p);
            }
            if text.trim().is_empty() {
                return Ok(Answer { body: Value::Null });
            }
            return serde_json::from_str(&text)
                .map(|body| Answer { body })
                .map_err(|_| {
                    SendError::boxed(Error::UnexpectedResponse {
                        request: request_line,
                        status,
                        excerpt: excerpt(&text),
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
                message: env.error.message,
                details: env.error.details,
                correlation_id,
            }),
            _ => Error::UnexpectedResponse {
                request: request_line,
                status,
                excerpt: excerpt(&text),
            },
        };
        Err(Box::new(SendError {
            error,
            wait_hint: pacing,
        }))
    }

    /// Reads the `RateLimit-*` headers: after a 429, how long until the
    /// budget refills (capped by the backoff cap); when only a few requests
    /// remain, the time one request takes to come back.
    fn rate_limit_pause(&self, resp: &Response) -> Option<Duration> {
        let num = |name: &str| header(resp, name).and_then(|v| v.trim().parse::<u64>().ok());
        let (limit, remaining) = (num("ratelimit-limit")?, num("ratelimit-remaining")?);
        let per_request = Duration::from_secs_f64(3600.0 / limit.max(1) as f64);
        let cap = match self.cfg.retry.backoff {
            Backoff::Exponential { cap, .. } => cap,
            Backoff::Constant(d) => d,
        };
        if resp.status().as_u16() == 429 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let until_reset =
                num("ratelimit-reset").map(|r| Duration::from_secs(r.saturating_sub(now)));
            return Some(
                until_reset
                    .unwrap_or(per_request)
                    .min(per_request.max(Duration::from_secs(1)))
                    .min(cap),
            );
        }
        (remaining < RATE_LOW_WATER).then(|| per_request.min(cap))
    }
}

struct SendError {
    error: Error,
    wait_hint: Option<Duration>,
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

fn transport_error(request: &str, e: &reqwest::Error) -> Error {
    let timed_out = e.is_timeout();
    let reason = if timed_out {
        "no answer within the request timeout".to_string()
    } else {
        format!("request failed: {}", chain(e))
    };
    Error::Transport {
        request: request.to_string(),
        reason,
        timed_out,
    }
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

fn excerpt(text: &str) -> String {
    text.chars().take(120).collect()
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
            )
            .unwrap()
        };
        let err = Client::new(cfg).unwrap().get_volume(1).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("GET /volumes/1"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
