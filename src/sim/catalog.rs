//! The read-only resources that servers reference: the private network
//! their `private_net` names, one datacenter per location, and the one
//! server type. Derived from the world's locations and servers (the world
//! renders them, so this file knows nothing of the world), so an
//! official client that describes a server finds everything it points to.

use serde_json::{json, Value};

use crate::hcloud::types::Location;

/// The id of the private network every seeded server with a private IP is on.
pub const NETWORK_ID: i64 = 1;
/// The id of the one server type.
pub const SERVER_TYPE_ID: i64 = 1;

/// The private network of the servers with a private IP (`servers`, by
/// id), in `zone`; none without such servers.
pub fn network(servers: Vec<i64>, zone: &str) -> Option<Value> {
    if servers.is_empty() {
        return None;
    }
    Some(json!({
        "id": NETWORK_ID,
        "name": "kbv3-private",
        "ip_range": "10.0.0.0/16",
        "subnets": [{"type": "cloud", "ip_range": "10.0.0.0/24", "network_zone": zone,
                     "gateway": "10.0.0.1", "vswitch_id": null}],
        "routes": [],
        "servers": servers,
        "load_balancers": [],
        "protection": {"delete": false},
        "labels": {},
        "created": "2024-01-01T00:00:00+00:00",
        "expose_routes_to_vswitch": false,
    }))
}

/// The datacenter of a location (one per location: `<location>-dc3`).
pub fn datacenter(location: &Location) -> Value {
    json!({
        "id": location.id,
        "name": format!("{}-dc3", location.name),
        "description": format!("{} virtual DC 3", location.city),
        "location": location,
        "server_types": {"supported": [SERVER_TYPE_ID], "available": [SERVER_TYPE_ID],
                         "available_for_migration": [SERVER_TYPE_ID]},
    })
}

/// The server type every server has, available in `locations`.
pub fn server_type(locations: &[Location]) -> Value {
    let money = |net: &str, gross: &str| json!({"net": net, "gross": gross});
    let prices: Vec<Value> = locations
        .iter()
        .map(|l| {
            json!({"location": l.name, "price_hourly": money("0.0120", "0.0143"),
                   "price_monthly": money("7.5500", "8.9845"), "included_traffic": 21990232555520u64,
                   "price_per_tb_traffic": money("1.0000", "1.1900")})
        })
        .collect();
    let available: Vec<Value> = locations
        .iter()
        .map(|l| {
            json!({"id": l.id, "name": l.name, "deprecation": null, "recommended": true, "available": true})
        })
        .collect();
    json!({
        "id": SERVER_TYPE_ID,
        "name": "cpx22",
        "description": "CPX22",
        "category": "regular_purpose",
        "cores": 2,
        "memory": 4.0,
        "disk": 80,
        "deprecated": false,
        "deprecation": null,
        "prices": prices,
        "storage_type": "local",
        "cpu_type": "shared",
        "architecture": "x86",
        "locations": available,
    })
}
