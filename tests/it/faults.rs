//! Retry behaviour under injected faults. Counts, not timings, are asserted.

use std::sync::Arc;
use std::time::Duration;

use kbv3::hcloud::types::{CreateVolumeRequest, Labels};
use kbv3::hcloud::{Client, Error};

use crate::util::{all_faulted, fast_config, RecordingClock, Sim};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn transient_faults_are_retried_through_a_hundred_operations() {
    let sim = Sim::start(&[
        "--faults",
        "429=0.05,409=0.05,502=0.05,504=0.05",
        "--fault-seed",
        "42",
    ]);
    let c = sim.client();
    let hosts = [
        "builder-01",
        "litellm-01",
        "ml-platform-01",
        "nocodb-01",
        "baserow-01",
        "vector-db-01",
        "siem-01",
    ];
    let mut ops = 0;
    let mut cycle = 0;
    while ops < 100 {
        let server = c
            .server_by_name(hosts[cycle % hosts.len()])
            .unwrap()
            .unwrap();
        let name = format!("scenario-{cycle:02}");
        let req = CreateVolumeRequest {
            name: name.clone(),
            size: 10,
            location: Some("nbg1".into()),
            ..Default::default()
        };
        let created = c.create_volume(&req).unwrap();
        c.wait_for(&created.actions, WAIT).unwrap();
        let id = created.volume.id;
        c.wait_for(
            &[c.attach_volume(id, server.id, Some(false)).unwrap()],
            WAIT,
        )
        .unwrap();
        c.wait_for(&[c.resize_volume(id, 20).unwrap()], WAIT)
            .unwrap();
        let labels: Labels = [("cycle".to_string(), cycle.to_string())].into();
        c.update_volume(id, None, Some(&labels)).unwrap();
        c.wait_for(&[c.change_volume_protection(id, true).unwrap()], WAIT)
            .unwrap();
        c.wait_for(&[c.change_volume_protection(id, false).unwrap()], WAIT)
            .unwrap();
        c.wait_for(&[c.detach_volume(id).unwrap()], WAIT).unwrap();
        let v = c.get_volume(id).unwrap().unwrap();
        assert_eq!(
            (v.size, v.server, v.labels["cycle"].clone()),
            (20, None, cycle.to_string())
        );
        c.delete_volume(id).unwrap();
        ops += 9;
        cycle += 1;
    }
    let stats = c.stats();
    let faults = sim
        .requests()
        .iter()
        .filter(|r| !r["fault"].is_null())
        .count();
    eprintln!(
        "fault scenario: {ops} operations, {} requests ({:?}), {} retries, {faults} injected faults, 0 failures",
        stats.total(),
        stats.requests,
        stats.retries
    );
    assert!(
        faults > 0 && stats.retries as usize >= faults,
        "every injected fault was retried"
    );
    if let Ok(dir) = std::env::var("KBV3_RESPONSE_LOG_DIR") {
        let summary = serde_json::json!({"operations": ops, "requests": stats.requests, "retries": stats.retries, "faults": faults});
        std::fs::write(
            std::path::Path::new(&dir).join("../fault-scenario.json"),
            summary.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn permanent_unavailable_fails_after_a_bounded_number_of_attempts() {
    let sim = Sim::start(&["--faults", "503=1"]);
    let err = sim.client().get_volume(104011392).unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "unavailable");
    assert!(
        err.to_string().contains("(gave up after 3 attempts)"),
        "{err}"
    );
    assert_eq!(sim.requests().len(), 3);
    assert!(all_faulted(&sim.requests()), "the fault was injected");
}

#[test]
fn rate_limit_answers_are_waited_out_as_the_headers_say() {
    // 5 requests per second and no pacing of our own: 30 quick requests must
    // run into 429s, wait as RateLimit-Reset says, and still all succeed.
    let sim = Sim::start(&["--rate-limit", "5", "--rate-window", "1"]);
    let clock = Arc::new(RecordingClock::default());
    let mut cfg = fast_config(&sim.endpoint);
    cfg.pace_below = 0;
    cfg.retry.max_retries = 1;
    cfg.deadline = Some(Duration::from_secs(120));
    cfg.clock = clock.clone();
    let c = Client::new(cfg).unwrap();
    for _ in 0..30 {
        assert!(c.get_volume(104011392).unwrap().is_some());
    }
    let log = sim.requests();
    let limited = log.iter().filter(|r| r["status"] == 429).count();
    let ok = log.iter().filter(|r| r["status"] == 200).count();
    assert_eq!(ok, 30);
    assert!(limited > 0, "the burst must meet the limit");
    assert_eq!(
        c.stats().retries as usize,
        limited,
        "every 429 was retried, beyond max_retries"
    );
    // The bucket is full again within a second of any answer (RateLimit-Reset,
    // in whole seconds, so within 2 s as the client reads it), and one request
    // refills in a fifth of that: every wait is between the 100 ms floor and
    // that horizon, never a fixed backoff.
    let sleeps = clock.sleeps.lock().unwrap().clone();
    assert_eq!(sleeps.len(), limited);
    assert!(
        sleeps
            .iter()
            .all(|s| (Duration::from_millis(100)..=Duration::from_secs(2)).contains(s)),
        "{sleeps:?}"
    );
}

#[test]
fn a_non_json_500_is_a_clear_error_and_not_retried() {
    let sim = Sim::start(&["--faults", "500=1"]);
    let err = sim.client().get_volume(104011392).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "GET /volumes/104011392: unexpected HTTP 500 answer that is not Hetzner API JSON"
        ),
        "{text}"
    );
    assert_eq!(sim.requests().len(), 1);
    assert!(all_faulted(&sim.requests()), "the fault was injected");
}

#[test]
fn a_stalled_answer_times_out_with_a_clear_error() {
    let sim = Sim::start(&["--faults", "stall=1", "--stall-ms", "1500"]);
    let mut cfg = fast_config(&sim.endpoint);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry.max_retries = 1;
    let err = Client::new(cfg).unwrap().get_volume(104011392).unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /volumes/104011392: no answer within the request timeout (gave up after 2 attempts)"
    );
    assert_eq!(err.code(), "request_timeout");
    assert!(all_faulted(&sim.requests()), "the stall was injected");
}

#[test]
fn a_create_whose_answer_was_lost_adopts_the_volume_it_made() {
    // Every answer stalls past the timeout: the first POST creates the volume,
    // the retry meets uniqueness_error, and the client adopts the volume.
    let sim = Sim::start(&[
        "--faults",
        "stall=0.5",
        "--fault-seed",
        "3",
        "--stall-ms",
        "1000",
    ]);
    let mut cfg = fast_config(&sim.endpoint);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry.max_retries = 8;
    let c = Client::new(cfg).unwrap();
    let req = CreateVolumeRequest {
        name: "lost-answer".into(),
        size: 10,
        location: Some("nbg1".into()),
        ..Default::default()
    };
    let mut adopted = false;
    // Try names until one create has a lost first answer (deterministic under the seed).
    for i in 0..10 {
        let req = CreateVolumeRequest {
            name: format!("{}-{i}", req.name),
            ..req.clone()
        };
        let created = c.create_volume(&req).unwrap();
        assert_eq!(created.volume.name, req.name);
        adopted |= created.adopted;
        if adopted {
            break;
        }
    }
    assert!(
        adopted,
        "one of the creates lost its answer and adopted its volume"
    );
    let posts = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["status"] == 409)
        .count();
    assert!(posts >= 1);
    assert!(
        sim.requests().iter().any(|r| r["fault"] == "Stall"),
        "answers were stalled"
    );
}

#[test]
fn a_retry_knows_whether_an_earlier_attempt_may_have_done_the_work() {
    // A project with one unattached volume (7).
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"{"servers": [], "next_volume_id": 100, "next_action_id": 1,
            "volumes": [{"id": 7, "name": "vol-orphan", "size": 10, "location": "nbg1"}]}"#,
    )
    .unwrap();
    // Seed 3 at one in two: the first request is faulted.
    let faulted_once = |fault: &str| {
        Sim::start_with_seed(
            &seed,
            &[
                "--faults",
                &format!("{fault}=0.5"),
                "--fault-seed",
                "3",
                "--stall-ms",
                "1000",
            ],
        )
    };
    let client = |sim: &Sim| {
        let mut cfg = fast_config(&sim.endpoint);
        cfg.request_timeout = Duration::from_millis(300);
        cfg.retry.max_retries = 8;
        Client::new(cfg).unwrap()
    };
    // The DELETE went through but its answer was lost: the retry meets a 404.
    let sim = faulted_once("stall");
    let err = client(&sim).delete_volume(7).unwrap_err();
    assert!(err.is_not_found() && err.earlier_attempt_unsure(), "{err}");
    assert!(
        sim.requests()[0]["fault"] == "Stall",
        "the first answer was lost"
    );
    // A conflict (the API did nothing) then a 404: nothing of this request did it.
    let sim = faulted_once("409");
    let err = client(&sim).delete_volume(999).unwrap_err();
    assert!(
        err.is_not_found() && err.attempts() > 1 && !err.earlier_attempt_unsure(),
        "{err}"
    );
    // A 404 at the first attempt: gone before.
    let sim = Sim::start_with_seed(&seed, &[]);
    let err = client(&sim).delete_volume(999).unwrap_err();
    assert!(err.is_not_found() && !err.earlier_attempt_unsure(), "{err}");
}
