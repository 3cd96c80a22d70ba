//! Property test: whatever sequence of operations clients send, the
//! simulator's world stays consistent. Sizes only grow, names stay unique,
//! `volume.server` and `server.volumes` agree, and a protected or attached
//! volume is never deleted.

use std::collections::BTreeMap;

use kbv3::hcloud::types::Labels;
use kbv3::sim::requests::{CreateVolume, Placement};
use kbv3::sim::seed::Seed;
use kbv3::sim::world::World;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create {
        name: u8,
        size: u32,
        server: Option<u8>,
    },
    Attach {
        volume: u8,
        server: u8,
    },
    Detach {
        volume: u8,
    },
    Resize {
        volume: u8,
        size: u32,
    },
    Protect {
        volume: u8,
        on: bool,
    },
    Rename {
        volume: u8,
        name: u8,
    },
    Delete {
        volume: u8,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 5u32..60, proptest::option::of(0u8..4))
            .prop_map(|(name, size, server)| Op::Create { name, size, server }),
        (0u8..8, 0u8..4).prop_map(|(volume, server)| Op::Attach { volume, server }),
        (0u8..8).prop_map(|volume| Op::Detach { volume }),
        (0u8..8, 5u32..80).prop_map(|(volume, size)| Op::Resize { volume, size }),
        (0u8..8, any::<bool>()).prop_map(|(volume, on)| Op::Protect { volume, on }),
        (0u8..8, 0u8..6).prop_map(|(volume, name)| Op::Rename { volume, name }),
        (0u8..8).prop_map(|volume| Op::Delete { volume }),
        (0u64..60).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn small_world() -> World {
    let seed: Seed = serde_json::from_str(
        r#"{"servers":[{"id":1,"name":"a","location":"nbg1"},{"id":2,"name":"b","location":"nbg1"},
                       {"id":3,"name":"c","location":"hel1"},{"id":4,"name":"d","location":"nbg1"}],
            "volumes":[{"id":10,"name":"v0","size":10,"server":"a"},{"id":11,"name":"v1","size":20,"location":"hel1"}]}"#,
    )
    .unwrap();
    seed.into_world(0, 20).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn world_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = small_world();
        let mut now = 0u64;
        let mut sizes: BTreeMap<i64, u32> = w.volumes.values().map(|v| (v.id, v.size)).collect();
        for op in ops {
            now += 1;
            w.advance(now);
            let ids: Vec<i64> = w.volumes.keys().copied().collect();
            let pick = |i: u8| ids.get(i as usize % ids.len().max(1)).copied().unwrap_or(-1);
            match op {
                Op::Create { name, size, server } => {
                    let placement = match server {
                        Some(s) => Placement::Server(i64::from(s) + 1),
                        None => Placement::Location("nbg1".into()),
                    };
                    let req = CreateVolume { name: format!("n{name}"), size: size.max(10), placement,
                                             labels: Labels::new(), automount: false, format: None };
                    let _ = w.create_volume(req, now, false);
                }
                Op::Attach { volume, server } => { let _ = w.attach_volume(pick(volume), i64::from(server) + 1, now, false); }
                Op::Detach { volume } => { let _ = w.detach_volume(pick(volume), now, false); }
                Op::Resize { volume, size } => { let _ = w.resize_volume(pick(volume), size, now, false); }
                Op::Protect { volume, on } => { let _ = w.change_protection(pick(volume), Some(on), now); }
                Op::Rename { volume, name } => {
                    let req = kbv3::sim::requests::UpdateVolume { name: Some(format!("n{name}")), labels: None };
                    let _ = w.update_volume(pick(volume), req);
                }
                Op::Delete { volume } => {
                    let id = pick(volume);
                    let before = w.volumes.get(&id).cloned();
                    if w.delete_volume(id).is_ok() {
                        let v = before.expect("only existing volumes can be deleted");
                        prop_assert!(!v.protected, "deleted protected volume {id}");
                        prop_assert!(v.server.is_none(), "deleted attached volume {id}");
                    }
                }
                Op::Advance { ms } => now += ms,
            }
            w.advance(now);
            prop_assert_eq!(w.invariant_violations(), Vec::<String>::new());
            for v in w.volumes.values() {
                let previous = sizes.insert(v.id, v.size).unwrap_or(0);
                prop_assert!(v.size >= previous, "volume {} shrank from {} to {}", v.id, previous, v.size);
            }
        }
    }
}
