//! The Rust client against a spawned simulator.

use std::time::Duration;

use kbv3::hcloud::client::VolumeFilter;
use kbv3::hcloud::types::{CreateVolumeRequest, Labels};
use kbv3::hcloud::Error;

use crate::util::Sim;

const WAIT: Duration = Duration::from_secs(30);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_volume_endpoint_round_trip() {
    let sim = Sim::start(&[]);
    let c = sim.client();

    let locations = c.list_locations().unwrap();
    assert!(locations.iter().any(|l| l.name == "hel1"));
    let builder = c
        .server_by_name("builder-01")
        .unwrap()
        .expect("seeded server");
    assert_eq!(
        c.get_server(builder.id).unwrap().unwrap().name,
        "builder-01"
    );
    assert!(c.server_by_name("no-such-server").unwrap().is_none());
    assert_eq!(c.list_servers(None).unwrap().len(), 47);

    // Create with a server: created, then attached.
    let req = CreateVolumeRequest {
        name: "kbv3-builder-01-data".into(),
        size: 20,
        server: Some(builder.id),
        labels: Some(labels(&[("role_v3", "builder")])),
        format: Some("ext4".into()),
        ..CreateVolumeRequest::default()
    };
    let created = c.create_volume(&req).unwrap();
    assert_eq!(created.actions.len(), 2);
    let done = c.wait_for(&created.actions, WAIT).unwrap();
    assert!(done
        .iter()
        .all(|a| a.status == kbv3::hcloud::types::ActionStatus::Success));
    let attach = c
        .get_action(created.actions[1].id)
        .unwrap()
        .expect("the attach action is retrievable");
    assert_eq!(
        (attach.command.as_str(), attach.status.as_str()),
        ("attach_volume", "success")
    );
    assert!(c.get_action(1).unwrap().is_none());
    let v = c.get_volume(created.volume.id).unwrap().unwrap();
    assert_eq!(
        (v.server, v.status.as_str(), v.format.as_deref()),
        (Some(builder.id), "available", Some("ext4"))
    );
    assert_eq!(
        v.linux_device,
        format!("/dev/disk/by-id/scsi-0HC_Volume_{}", v.id)
    );

    // Detach, resize, protect, relabel, attach again.
    c.wait_for(&[c.detach_volume(v.id).unwrap()], WAIT).unwrap();
    c.wait_for(&[c.resize_volume(v.id, 40).unwrap()], WAIT)
        .unwrap();
    c.wait_for(&[c.change_volume_protection(v.id, true).unwrap()], WAIT)
        .unwrap();
    let renamed = c
        .update_volume(v.id, Some("kbv3-tmp"), Some(&labels(&[("a", "b")])))
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.size,
            renamed.protection.delete
        ),
        ("kbv3-tmp", 40, true)
    );
    assert_eq!(c.volume_by_name("kbv3-tmp").unwrap().unwrap().id, v.id);
    let refused = c.delete_volume(v.id).unwrap_err();
    assert_eq!(refused.code(), "protected");
    assert!(
        refused
            .to_string()
            .starts_with("volume deletion is protected (protected, "),
        "{refused}"
    );
    c.wait_for(&[c.change_volume_protection(v.id, false).unwrap()], WAIT)
        .unwrap();
    c.wait_for(
        &[c.attach_volume(v.id, builder.id, Some(false)).unwrap()],
        WAIT,
    )
    .unwrap();
    assert_eq!(c.delete_volume(v.id).unwrap_err().code(), "service_error");
    c.wait_for(&[c.detach_volume(v.id).unwrap()], WAIT).unwrap();
    c.delete_volume(v.id).unwrap();
    assert!(c.get_volume(v.id).unwrap().is_none());
    assert!(c.running_actions_of_volume(104011392).unwrap().is_empty());
    let stats = c.stats();
    assert!(
        stats.requests["POST"] >= 7 && stats.requests["DELETE"] == 3,
        "{stats:?}"
    );
}

#[test]
fn listing_follows_every_page_and_filters() {
    let sim = Sim::start(&[]);
    let c = sim.client();
    let mut actions = Vec::new();
    for i in 0..25 {
        let req = CreateVolumeRequest {
            name: format!("extra-{i:02}"),
            size: 10,
            location: Some(if i % 2 == 0 { "nbg1" } else { "hel1" }.into()),
            labels: Some(labels(&[("batch", if i < 5 { "first" } else { "rest" })])),
            ..CreateVolumeRequest::default()
        };
        actions.extend(c.create_volume(&req).unwrap().actions);
    }
    c.wait_for(&actions, WAIT).unwrap();
    let all = c.list_volumes(&VolumeFilter::default()).unwrap();
    assert_eq!(all.len(), 65, "40 seeded + 25 new, across two pages of 50");
    let ids: Vec<i64> = all.iter().map(|v| v.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "default order is by id");
    let first = VolumeFilter {
        label_selector: Some("batch in (first)".into()),
        ..VolumeFilter::default()
    };
    assert_eq!(c.list_volumes(&first).unwrap().len(), 5);
    let not_legacy = VolumeFilter {
        label_selector: Some("!generation".into()),
        ..VolumeFilter::default()
    };
    assert_eq!(c.list_volumes(&not_legacy).unwrap().len(), 25);
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r["path"] == "/v1/volumes" && r["query"].as_str().unwrap().contains("page=2"))
        .count();
    assert!(pages >= 1, "the second page was fetched");
}

#[test]
fn a_failed_action_is_an_error_with_its_code() {
    let sim = Sim::start(&["--faults", "action_error=1"]);
    let c = sim.client();
    let req = CreateVolumeRequest {
        name: "doomed".into(),
        size: 10,
        location: Some("nbg1".into()),
        ..Default::default()
    };
    let created = c.create_volume(&req).unwrap();
    let err = c.wait_for(&created.actions, WAIT).unwrap_err();
    match &err {
        Error::ActionFailed {
            code,
            command,
            action_id,
            ..
        } => {
            assert_eq!(
                (code.as_str(), command.as_str()),
                ("action_failed", "create_volume")
            );
            assert_eq!(*action_id, created.actions[0].id);
        }
        other => panic!("expected an action failure, got {other}"),
    }
    assert!(
        c.get_volume(created.volume.id).unwrap().is_none(),
        "a failed create leaves nothing behind"
    );
}

#[test]
fn locked_volume_is_retried_until_the_running_action_ends() {
    let sim = Sim::start(&["--action-ms", "1000"]);
    // Even with the smallest jitter, five retries from 300 ms outlast the 1 s action.
    let mut cfg = crate::util::fast_config(&sim.endpoint);
    cfg.retry = kbv3::hcloud::backoff::RetryPolicy::with_base(Duration::from_millis(300));
    let c = kbv3::hcloud::Client::new(cfg).unwrap();
    let server = c.server_by_name("builder-01").unwrap().unwrap();
    let req = CreateVolumeRequest {
        name: "fresh".into(),
        size: 10,
        location: Some("nbg1".into()),
        ..Default::default()
    };
    let created = c.create_volume(&req).unwrap();
    // The create is still running: the API answers 423 locked, the client waits it out.
    let attach = c.attach_volume(created.volume.id, server.id, None).unwrap();
    c.wait_for(&[attach], WAIT).unwrap();
    assert!(c.stats().retries >= 1);
    assert!(sim.requests().iter().any(|r| r["status"] == 423));
}

#[test]
fn an_action_wait_has_a_deadline() {
    let sim = Sim::start(&["--action-ms", "60000"]);
    let c = sim.client();
    let req = CreateVolumeRequest {
        name: "slow".into(),
        size: 10,
        location: Some("nbg1".into()),
        ..Default::default()
    };
    let created = c.create_volume(&req).unwrap();
    let err = c
        .wait_for(&created.actions, Duration::from_millis(200))
        .unwrap_err();
    assert!(
        matches!(&err, Error::ActionTimeout { running, .. } if running == &vec![created.actions[0].id]),
        "{err}"
    );
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let id = {
        let sim = Sim::start(&["--state", state_arg]);
        let c = sim.client();
        let req = CreateVolumeRequest {
            name: "kept".into(),
            size: 10,
            location: Some("hel1".into()),
            ..Default::default()
        };
        let created = c.create_volume(&req).unwrap();
        c.wait_for(&created.actions, WAIT).unwrap();
        c.delete_volume(104011392).unwrap_err(); // attached: refused, state unchanged
        created.volume.id
    }; // SIGTERM: the simulator saves and stops
    let sim = Sim::start(&["--state", state_arg]);
    let c = sim.client();
    let v = c
        .get_volume(id)
        .unwrap()
        .expect("the volume survived the restart");
    assert_eq!(
        (v.name.as_str(), v.location.name.as_str(), v.status.as_str()),
        ("kept", "hel1", "available")
    );
    assert_eq!(c.list_volumes(&VolumeFilter::default()).unwrap().len(), 41);
}
