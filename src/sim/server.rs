//! The simulator's HTTP shell: bearer auth, rate limit, fault injection,
//! routing to [`World`] operations, the API's headers, and the logs.
//!
//! One lock guards the world; an answer is never delayed while holding it
//! (a stalled answer sleeps after the lock is released).

use crate::hcloud::ApiCode;
use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::now_ms;

use anyhow::{Context, Result};
use rand::Rng;
use serde_json::{json, Value};

use super::devices::BlockDevices;
use super::faults::{Fault, FaultSpec, Faults};
use super::http;
use super::query::Query;
use super::ratelimit::{Budget, RateLimiter};
use super::routes::{self, Request, Route};
use super::seed::{load_state, save_state, Seed};
use super::world::{Effect, World};
use super::SimError;

/// How to run the simulator (the command-line options of `hcloud-sim`).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: String,
    pub token: String,
    pub seed: PathBuf,
    pub state: Option<PathBuf>,
    pub action_ms: u64,
    pub rate_limit: u64,
    pub rate_window_ms: u64,
    pub faults: FaultSpec,
    pub fault_seed: u64,
    pub stall_ms: u64,
    pub request_log: Option<PathBuf>,
    pub response_log: Option<PathBuf>,
    /// Back volumes with loop devices in this folder (root only).
    pub block_devices: Option<PathBuf>,
    /// Only volumes attached to these servers become loop devices (empty: all).
    pub block_device_servers: Vec<String>,
    /// Tests place events at an exact moment of a client's run: see [`Sim::hold`].
    pub hold_dir: Option<PathBuf>,
}

/// A running simulator's shared state.
struct Sim {
    opts: Options,
    /// The world, and the loop devices that mirror it, under one lock.
    world: Mutex<(World, Option<BlockDevices>)>,
    faults: Mutex<Faults>,
    limiter: Mutex<RateLimiter>,
    request_log: Option<Mutex<LineWriter<File>>>,
    response_log: Option<Mutex<LineWriter<File>>>,
}

/// One answer, before it is sent.
struct Answer {
    status: u16,
    body: Body,
    route: &'static str,
    budget: Option<Budget>,
    fault: Option<Fault>,
}

enum Body {
    Json(Value),
    Empty,
    Html(&'static str),
}

/// Starts the simulator, prints its endpoint URL as the first line on
/// stdout, and serves until SIGTERM or SIGINT. Then saves the state (with
/// `--state`) and returns.
pub fn run(opts: Options) -> Result<()> {
    let mut world = match &opts.state {
        Some(path) if path.exists() => load_state(path)?,
        _ => Seed::load(&opts.seed)?.into_world(now_ms(), opts.action_ms)?,
    };
    world.action_ms = opts.action_ms;
    let devices = match &opts.block_devices {
        Some(dir) => {
            let servers = (!opts.block_device_servers.is_empty())
                .then(|| opts.block_device_servers.iter().cloned().collect());
            let mut devices = BlockDevices::open(dir, servers, opts.state.is_some())?;
            world.device_dir = Some(devices.by_id_dir());
            world.advance(now_ms());
            devices
                .sync(&world)
                .context("cannot prepare the block devices (this needs root)")?;
            Some(devices)
        }
        None => None,
    };
    let open_log = |p: &Option<PathBuf>| -> Result<Option<Mutex<LineWriter<File>>>> {
        p.as_ref()
            .map(|p| {
                let f = File::options().create(true).append(true).open(p);
                f.map(|f| Mutex::new(LineWriter::new(f)))
                    .with_context(|| format!("cannot open log {}", p.display()))
            })
            .transpose()
    };
    let listener = listen(&opts.listen)?;
    let sim = Arc::new(Sim {
        world: Mutex::new((world, devices)),
        faults: Mutex::new(Faults::new(opts.faults.clone(), opts.fault_seed)),
        limiter: Mutex::new(RateLimiter::new(opts.rate_limit, opts.rate_window_ms)),
        request_log: open_log(&opts.request_log)?,
        response_log: open_log(&opts.response_log)?,
        opts,
    });
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    let handler: Arc<http::Handler> = {
        let sim = Arc::clone(&sim);
        Arc::new(move |req| sim.handle(req))
    };
    let accepting = {
        let (listener, stop) = (listener.try_clone()?, Arc::clone(&stop));
        std::thread::spawn(move || http::serve(&listener, &stop, &handler))
    };
    println!("http://{addr}/v1");
    std::io::stdout().flush().ok();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    http::wake(&listener);
    accepting.join().ok();
    let saved = sim.save();
    if let Some(devices) = sim.world.lock().expect("world lock").1.as_mut() {
        devices.release_all();
    }
    saved
}

impl Sim {
    fn save(&self) -> Result<()> {
        match &self.opts.state {
            Some(path) => save_state(path, &self.world.lock().expect("world lock").0),
            None => Ok(()),
        }
    }

    fn handle(&self, req: http::Request) -> http::Response {
        let started = Instant::now();
        let method = req.method.as_str();
        let (path, raw_query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let body = std::str::from_utf8(&req.body);
        self.hold(method, path);
        let answer = if let Ok(body) = body {
            self.answer(method, path, raw_query, body, req.header("Authorization"))
        } else {
            error_answer(
                SimError::new(400, ApiCode::JsonError, "request body is not UTF-8"),
                "",
                None,
            )
        };
        let correlation_id = format!("{:016x}", rand::thread_rng().gen::<u64>());
        let (bytes, content_type) = match &answer.body {
            Body::Json(v) => (
                serde_json::to_vec(v).unwrap_or_default(),
                Some("application/json"),
            ),
            Body::Empty => (Vec::new(), None),
            Body::Html(h) => (h.as_bytes().to_vec(), Some("text/html")),
        };
        let mut headers = vec![("X-Correlation-Id", correlation_id)];
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct.to_string()));
        }
        if let Some(b) = answer.budget {
            headers.push(("RateLimit-Limit", b.limit.to_string()));
            headers.push(("RateLimit-Remaining", b.remaining.to_string()));
            headers.push(("RateLimit-Reset", b.reset.to_string()));
        }
        // Logged before the answer leaves (or stalls), so whoever holds an
        // answer, or gave up waiting for it, also finds its request in the log.
        self.log(method, path, raw_query, &answer, started.elapsed());
        if answer.fault == Some(Fault::Stall) {
            std::thread::sleep(Duration::from_millis(self.opts.stall_ms));
        }
        http::Response {
            status: answer.status,
            headers,
            body: bytes,
        }
    }

    /// With `--hold-dir DIR`: the first request for which DIR has a file
    /// named after it (`POST _v1_volumes_7_actions_detach`: the method, a
    /// space, the path with `/` as `_`) takes that file (renamed to
    /// `<name>.held`) and waits, before it is processed, until `<name>.held`
    /// is removed. A test thereby changes the world at an exact moment of a
    /// client's run, with requests of its own to the same path.
    fn hold(&self, method: &str, path: &str) {
        let Some(dir) = &self.opts.hold_dir else {
            return;
        };
        let name = format!("{method} {}", path.replace('/', "_"));
        let held = dir.join(format!("{name}.held"));
        if std::fs::rename(dir.join(&name), &held).is_err() {
            return;
        }
        while held.exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log(&self, method: &str, path: &str, query: &str, answer: &Answer, took: Duration) {
        if let Some(log) = &self.request_log {
            let line = json!({
                "ts_ms": now_ms(),
                "method": method,
                "path": path,
                "query": query,
                "route": answer.route,
                "status": answer.status,
                "duration_ms": took.as_secs_f64() * 1000.0,
                "fault": answer.fault.map(|f| format!("{f:?}")),
            });
            let _ = writeln!(log.lock().expect("log lock"), "{line}");
        }
        if let (Some(log), Body::Json(body)) = (&self.response_log, &answer.body) {
            let line = json!({"method": method, "route": answer.route, "status": answer.status, "body": body});
            let _ = writeln!(log.lock().expect("log lock"), "{line}");
        }
    }

    fn answer(
        &self,
        method: &str,
        path: &str,
        raw_query: &str,
        body: &str,
        auth: Option<&str>,
    ) -> Answer {
        let Some(rest) = path.strip_prefix("/v1") else {
            return error_answer(SimError::not_found("route"), "", None);
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let parsed = Route::of(&segments);
        let route = parsed.map_or("", Route::template);
        let authorized = auth == Some(format!("Bearer {}", self.opts.token).as_str());
        let now = now_ms();
        let key = if authorized { "token" } else { "anonymous" };
        let budget = self.limiter.lock().expect("limiter lock").take(key, now);
        if !authorized {
            return error_answer(
                SimError::new(401, ApiCode::Unauthorized, "unable to authenticate"),
                route,
                Some(budget),
            );
        }
        if !budget.allowed {
            let e = SimError::new(
                429,
                ApiCode::RateLimitExceeded,
                "limit of requests per hour reached",
            );
            return error_answer(e, route, Some(budget));
        }
        let (fault, fail_action) = {
            let mut faults = self.faults.lock().expect("faults lock");
            (faults.draw_request(), faults.draw_action_failure())
        };
        if let Some(answer) = fault.and_then(|f| fault_answer(f, route, budget)) {
            return answer;
        }
        let result = {
            let mut guard = self.world.lock().expect("world lock");
            let (world, devices) = &mut *guard;
            let applied = world.advance(now);
            let query = Query::parse(raw_query);
            let request = Request {
                method,
                segments: &segments,
                query: &query,
                body,
                now,
                fail_action,
            };
            let result = parsed.map_or(Err(SimError::not_found("route")), |route| {
                routes::handle(world, route, &request)
            });
            if let Some(devices) = devices.as_mut() {
                let deleted =
                    (result.is_ok() && method == "DELETE" && parsed == Some(Route::Volume))
                        .then(|| request.id_at(1))
                        .flatten();
                mirror(devices, world, &applied, deleted);
            }
            if method != "GET" && result.is_ok() {
                if let Some(path) = &self.opts.state {
                    if let Err(e) = save_state(path, world) {
                        eprintln!("hcloud-sim: cannot save state: {e:#}");
                    }
                }
            }
            result
        };
        match result {
            Ok((status, value)) => Answer {
                status,
                body: value.map_or(Body::Empty, Body::Json),
                route,
                budget: Some(budget),
                fault,
            },
            Err(e) => Answer {
                fault,
                ..error_answer(e, route, Some(budget))
            },
        }
    }
}

/// Mirrors applied effects, and a deleted volume, onto the loop devices.
fn mirror(devices: &mut BlockDevices, world: &World, applied: &[Effect], deleted: Option<i64>) {
    let mut results: Vec<anyhow::Result<()>> =
        applied.iter().map(|e| devices.apply(world, *e)).collect();
    if let Some(id) = deleted {
        results.push(devices.deleted(id));
    }
    for e in results.into_iter().filter_map(Result::err) {
        eprintln!("hcloud-sim: block device: {e:#}");
    }
}

fn error_answer(e: SimError, route: &'static str, budget: Option<Budget>) -> Answer {
    Answer {
        status: e.status,
        body: Body::Json(e.body()),
        route,
        budget,
        fault: None,
    }
}

fn fault_answer(fault: Fault, route: &'static str, budget: Budget) -> Option<Answer> {
    let e = match fault {
        Fault::RateLimited => {
            let b = Budget {
                remaining: 0,
                ..budget
            };
            let e = SimError::new(
                429,
                ApiCode::RateLimitExceeded,
                "limit of requests per hour reached",
            );
            return Some(Answer {
                fault: Some(fault),
                ..error_answer(e, route, Some(b))
            });
        }
        Fault::Conflict => SimError::new(
            409,
            ApiCode::Conflict,
            "the resource has changed during the request, please retry",
        ),
        Fault::BadGateway => SimError::new(502, ApiCode::BadGateway, "bad gateway"),
        Fault::Unavailable => SimError::new(
            503,
            ApiCode::Unavailable,
            "service is currently not available",
        ),
        Fault::GatewayTimeout => SimError::new(
            504,
            ApiCode::Timeout,
            "the request could not be answered in time",
        ),
        Fault::NonJson500 => {
            let html = "<html><body><h1>500 Internal Server Error</h1></body></html>";
            return Some(Answer {
                status: 500,
                body: Body::Html(html),
                route,
                budget: Some(budget),
                fault: Some(fault),
            });
        }
        Fault::Stall => return None,
    };
    Some(Answer {
        fault: Some(fault),
        ..error_answer(e, route, Some(budget))
    })
}

/// A listening socket with `TCP_NODELAY`, which Linux passes on to the
/// accepted connections: an answer's last segment then leaves at once instead
/// of waiting for the client's delayed ACK (40 ms per request on keep-alive
/// connections).
fn listen(addr: &str) -> Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("no address for {addr}"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .and_then(|s| {
        s.set_reuse_address(true)?;
        s.set_tcp_nodelay(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        Ok(s)
    })
    .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}
