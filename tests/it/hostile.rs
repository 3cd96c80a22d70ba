//! The client against hostile endpoints on 127.0.0.1: servers that echo the
//! token, answer 429 for ever, redirect, send huge or endless answers, lose
//! actions, or stall. Waits are recorded by an injected clock, not slept.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kbv3::hcloud::clock::Clock;
use kbv3::hcloud::types::Action;
use kbv3::hcloud::{Client, Config, Error};

use crate::util::{fast_config, TOKEN};

/// A test server: `answer(request number, method and url, authorization)`
/// gives status, headers and body; it runs until the test ends.
struct Hostile {
    endpoint: String,
    requests: Arc<AtomicU32>,
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

impl Hostile {
    fn start(answer: impl Fn(u32, &str, &str) -> Answer + Send + Sync + 'static) -> Hostile {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(AtomicU32::new(0));
        let counter = requests.clone();
        let answer = Arc::new(answer);
        thread::spawn(move || {
            for req in server.incoming_requests() {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let line = format!("{} {}", req.method(), req.url());
                let answer = answer.clone();
                thread::spawn(move || {
                    let (status, headers, body) = answer(n, &line, &auth);
                    // A "Transfer-Encoding: chunked" header asks for an answer without a length.
                    let chunked = headers.iter().any(|(k, _)| *k == "Transfer-Encoding");
                    let length = (!chunked).then_some(body.len());
                    let headers = headers
                        .into_iter()
                        .filter(|(k, _)| *k != "Transfer-Encoding")
                        .map(|(k, v)| tiny_http::Header::from_bytes(k, v.as_bytes()).unwrap())
                        .collect();
                    let resp = tiny_http::Response::new(
                        status.into(),
                        headers,
                        std::io::Cursor::new(body),
                        length,
                        None,
                    );
                    let _ = req.respond(resp);
                });
            }
        });
        Hostile {
            endpoint: format!("http://127.0.0.1:{port}/v1"),
            requests,
        }
    }

    fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn json_type() -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/json".into())]
}

/// A clock whose sleeps only move its own time forward, and are recorded.
#[derive(Debug)]
struct FakeClock {
    start: Instant,
    offset: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl FakeClock {
    fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            sleeps: Mutex::new(Vec::new()),
        })
    }
    fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }
    fn sleep(&self, d: Duration) {
        *self.offset.lock().unwrap() += d;
        self.sleeps.lock().unwrap().push(d);
    }
}

fn client(endpoint: &str, clock: Arc<FakeClock>, deadline: Duration) -> Client {
    Client::new(Config {
        clock,
        deadline: Some(deadline),
        ..fast_config(endpoint)
    })
    .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Hetzner's headers for an empty bucket of 3600 that refills one a second.
fn empty_bucket() -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("RateLimit-Limit", "3600".into()),
        ("RateLimit-Remaining", "0".into()),
        ("RateLimit-Reset", (unix_now() + 3600).to_string()),
    ]
}

const LIMITED: &[u8] = br#"{"error":{"code":"rate_limit_exceeded","message":"limit of requests per hour reached","details":null}}"#;

fn volume_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"volume": {
        "id": 1, "created": "2026-01-01T00:00:00Z", "name": "v", "server": null,
        "location": {"id": 1, "name": "nbg1", "description": "", "country": "DE", "city": "", "latitude": 0.0,
                     "longitude": 0.0, "network_zone": "eu-central"},
        "size": 10, "linux_device": "/dev/x", "protection": {"delete": false}, "labels": {},
        "status": "available", "format": null}}))
    .unwrap()
}

#[test]
fn a_429_waits_one_refill_per_the_headers_and_spends_no_retries() {
    let server = Hostile::start(|n, _, _| {
        if n <= 8 {
            (429, empty_bucket(), LIMITED.to_vec())
        } else {
            (200, json_type(), volume_body())
        }
    });
    let clock = FakeClock::new();
    let mut c = Config {
        clock: clock.clone(),
        deadline: Some(Duration::from_secs(600)),
        ..fast_config(&server.endpoint)
    };
    c.retry.max_retries = 1;
    let v = Client::new(c).unwrap().get_volume(1).unwrap();
    assert_eq!(
        v.unwrap().id,
        1,
        "eight 429s were waited out with a retry budget of 1"
    );
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 8, "{sleeps:?}");
    // One request refills in (Reset - now) / (limit - remaining) = 1 s: the
    // first wait is that; later ones, while 429s keep coming, a draw up to
    // 2^(n-1) refills (a minute at most), never less than one refill.
    assert!(
        (Duration::from_millis(990)..=Duration::from_millis(1010)).contains(&sleeps[0]),
        "{sleeps:?}"
    );
    for (n, s) in sleeps.iter().enumerate() {
        let most = Duration::from_secs(1 << n.min(6)).min(Duration::from_secs(60));
        assert!(
            (Duration::from_millis(990)..=most + Duration::from_millis(10)).contains(s),
            "wait {n}: {s:?}"
        );
    }
}

#[test]
fn a_429_that_outlasts_the_deadline_says_when_the_budget_refills() {
    let server = Hostile::start(|_, _, _| (429, empty_bucket(), LIMITED.to_vec()));
    let clock = FakeClock::new();
    let err = client(&server.endpoint, clock.clone(), Duration::from_secs(5))
        .get_volume(1)
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(
        text.starts_with("GET /volumes/1: the project's request budget is spent (rate_limit_exceeded): the next request is allowed in 1s and the budget is full again at 20"),
        "{text}"
    );
    assert!(
        text.ends_with("after this run's deadline; rerun later or raise wait_timeout"),
        "{text}"
    );
    // It waited while the waits fitted in the deadline, then gave up before the next one.
    let sleeps = clock.sleeps();
    assert!(server.requests() >= 2 && sleeps.len() as u32 == server.requests() - 1);
    assert!(
        sleeps.iter().sum::<Duration>() < Duration::from_secs(5),
        "{sleeps:?}"
    );
}

#[test]
fn the_token_is_scrubbed_from_everything_an_endpoint_echoes() {
    let cases: Vec<fn(&str) -> Answer> = vec![
        |auth| {
            (401, json_type(), format!(r#"{{"error":{{"code":"unauthorized","message":"bad token {auth}","details":{{"echo":"{auth}"}}}}}}"#).into_bytes())
        },
        |auth| {
            (
                500,
                vec![("Content-Type", "text/html".into())],
                format!("<html><body><h1>Error</h1><p>Authorization: {auth}</p></body></html>")
                    .into_bytes(),
            )
        },
        |auth| {
            (502, json_type(), format!(r#"{{"error":{{"code":"bad_gateway","message":"upstream said {auth}","details":null}}}}"#).into_bytes())
        },
        |auth| {
            (
                200,
                vec![("Content-Type", "text/plain".into())],
                format!("you sent {auth}").into_bytes(),
            )
        },
        |auth| {
            (
                403,
                vec![
                    ("Content-Type", "application/json".into()),
                    ("X-Correlation-Id", auth.to_string()),
                ],
                br#"{"error":{"code":"forbidden","message":"no","details":null}}"#.to_vec(),
            )
        },
        |auth| {
            (
                302,
                vec![("Location", format!("http://127.0.0.1:1/v1?auth={auth}"))],
                Vec::new(),
            )
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let server = Hostile::start(move |_, _, auth| case(auth));
        let err = client(&server.endpoint, FakeClock::new(), Duration::from_secs(60))
            .get_volume(1)
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(TOKEN), "case {i}: {shown}");
        assert!(
            !shown.to_lowercase().contains("bearer t"),
            "case {i}: {shown}"
        );
        assert!(
            shown.contains("***"),
            "case {i}: the echo was there and was scrubbed: {shown}"
        );
    }
}

#[test]
fn redirects_are_refused_not_followed() {
    let server = Hostile::start(|_, _, _| {
        (
            301,
            vec![("Location", "https://elsewhere.example/v1/volumes/1".into())],
            Vec::new(),
        )
    });
    let err = client(&server.endpoint, FakeClock::new(), Duration::from_secs(60))
        .get_volume(1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /volumes/1: the API answered HTTP 301, a redirect to https://elsewhere.example/v1/volumes/1; kbv3 does not follow redirects with the token: set api_endpoint to the final URL"
    );
    assert_eq!(server.requests(), 1, "not retried, not followed");
}

#[test]
fn huge_answers_are_refused_with_or_without_a_length() {
    for chunked in [false, true] {
        let server = Hostile::start(move |_, _, _| {
            let body = vec![b'x'; 5 * 1024 * 1024];
            let mut headers = json_type();
            if chunked {
                headers.push(("Transfer-Encoding", "chunked".into()));
            }
            (200, headers, body)
        });
        let err = client(&server.endpoint, FakeClock::new(), Duration::from_secs(60))
            .get_volume(1)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET /volumes/1: the answer is larger than 4 MiB; refusing to read it"
        );
        assert_eq!(server.requests(), 1);
    }
}

#[test]
fn endless_pages_stop_at_a_bound() {
    let server = Hostile::start(|n, _, _| {
        let body = serde_json::json!({"volumes": [], "meta": {"pagination": {
            "page": n, "per_page": 50, "previous_page": null, "next_page": n + 1, "last_page": null, "total_entries": null}}});
        (200, json_type(), serde_json::to_vec(&body).unwrap())
    });
    let mut cfg = fast_config(&server.endpoint);
    cfg.max_pages = 20;
    let err = Client::new(cfg)
        .unwrap()
        .list_volumes(&Default::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /volumes: stopped after 20 pages; the API keeps announcing another page"
    );
    assert_eq!(server.requests(), 20);
}

#[test]
fn an_action_the_api_does_not_return_fails_at_once() {
    let server = Hostile::start(|_, _, _| {
        let body = serde_json::json!({"actions": [], "meta": {"pagination": {
            "page": 1, "per_page": 50, "previous_page": null, "next_page": null, "last_page": 1, "total_entries": 0}}});
        (200, json_type(), serde_json::to_vec(&body).unwrap())
    });
    let running: Action = serde_json::from_value(serde_json::json!({
        "id": 77, "command": "detach_volume", "status": "running", "progress": 0,
        "started": "2026-01-01T00:00:00Z", "finished": null, "resources": [], "error": null}))
    .unwrap();
    let err = client(&server.endpoint, FakeClock::new(), Duration::from_secs(600))
        .wait_for(&[running], Duration::from_secs(600))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "actions not found: 77 (the API did not return them when polled)"
    );
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_stalling_endpoint_fails_at_the_deadline_naming_what_it_waited_for() {
    let server = Hostile::start(|_, _, _| {
        thread::sleep(Duration::from_secs(20));
        (200, Vec::new(), Vec::new())
    });
    let mut cfg = fast_config(&server.endpoint);
    cfg.deadline = Some(Duration::from_secs(2));
    cfg.request_timeout = Duration::from_secs(60);
    let err = Client::new(cfg).unwrap().get_volume(1).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
    assert!(
        text.starts_with("the deadline of 2s (wait_timeout) ran out while "),
        "{text}"
    );
    assert!(text.contains("GET /volumes/1"), "{text}");
}

#[test]
fn unusable_settings_fail_before_any_request() {
    use kbv3::hcloud::Environment;
    let env = Environment::default();
    let resolve = |token: &str, endpoint: &str| {
        Config::resolve(Some(token.into()), Some(endpoint.into()), false, &env)
            .unwrap_err()
            .to_string()
    };
    assert!(resolve("a\nb", "http://127.0.0.1:1/v1").contains("line break"));
    assert!(resolve("t", "ftp://127.0.0.1/v1").contains("uses ftp://"));
    assert!(resolve("t", "http://api.example.com/v1").contains("allow_insecure_http"));
    assert!(resolve("t", "http//x").contains("is not a valid URL"));
}
