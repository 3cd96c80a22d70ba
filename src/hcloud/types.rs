//! Serde models of the API objects kbv3 reads and writes.
//!
//! They are tolerant when reading (unknown fields are ignored, `size` may be an
//! integer or a float) and exact when writing (integers, nullable fields
//! present as `null`), so the simulator can serialise the same types and stay
//! within the official OpenAPI document.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Labels: key → value, always strings, sorted for stable output.
pub type Labels = BTreeMap<String, String>;

/// A Hetzner location (`nbg1`, `hel1`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub country: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub network_zone: String,
}

/// A volume's protection flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    pub delete: bool,
}

/// A volume as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: i64,
    pub created: String,
    pub name: String,
    /// Id of the server it is attached to.
    pub server: Option<i64>,
    pub location: Location,
    /// Size in GB.
    #[serde(deserialize_with = "lenient_size")]
    pub size: u32,
    pub linux_device: String,
    pub protection: Protection,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Labels,
    /// `creating` or `available`.
    pub status: String,
    /// `ext4`, `xfs`, or `None` when the volume was created blank.
    pub format: Option<String>,
}

/// The part of a server that volume work needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub location: Location,
    #[serde(default)]
    pub volumes: Vec<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Labels,
}

/// A resource an action touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResource {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The error of a failed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionError {
    pub code: String,
    pub message: String,
}

/// Where an action is: the API's three statuses, shared by the client and
/// the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    Running,
    Success,
    Error,
}

impl ActionStatus {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Running => "running",
            ActionStatus::Success => "success",
            ActionStatus::Error => "error",
        }
    }
}

/// An asynchronous action (`create_volume`, `attach_volume`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: i64,
    pub command: String,
    pub status: ActionStatus,
    pub progress: i32,
    pub started: String,
    pub finished: Option<String>,
    pub resources: Vec<ActionResource>,
    pub error: Option<ActionError>,
}

impl Action {
    /// True while the action has not finished.
    pub fn is_running(&self) -> bool {
        self.status == ActionStatus::Running
    }
}

/// Pagination metadata of a list response: exactly the API's six keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    pub page: u64,
    pub per_page: u64,
    pub previous_page: Option<u64>,
    pub next_page: Option<u64>,
    pub last_page: Option<u64>,
    pub total_entries: Option<u64>,
}

/// The `meta` object of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub pagination: Pagination,
}

/// Body of `POST /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolumeRequest {
    pub name: String,
    pub size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automount: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Answer of `POST /volumes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateVolumeResponse {
    pub volume: Volume,
    pub action: Action,
    #[serde(default)]
    pub next_actions: Vec<Action>,
}

/// Accepts `42` and `42.0` (the OpenAPI document says `number`).
fn lenient_size<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "size {n} is not a whole number of GB"
        )));
    }
    Ok(n as u32)
}

/// Reads `null` as the type's default (an empty map for labels).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume_json(size: &str) -> String {
        format!(
            r#"{{"id":1,"created":"2026-01-01T00:00:00Z","name":"v","server":null,
            "location":{{"id":2,"name":"nbg1","description":"d","country":"DE","city":"N",
            "latitude":1.0,"longitude":2.0,"network_zone":"eu-central"}},
            "size":{size},"linux_device":"/dev/disk/by-id/scsi-0HC_Volume_1",
            "protection":{{"delete":false}},"labels":null,"status":"available","format":null,
            "some_future_field":true}}"#
        )
    }

    #[test]
    fn size_accepts_integer_and_float_and_ignores_unknown_fields() {
        let a: Volume = serde_json::from_str(&volume_json("42")).unwrap();
        let b: Volume = serde_json::from_str(&volume_json("42.0")).unwrap();
        assert_eq!(a.size, 42);
        assert_eq!(a, b);
        assert!(a.labels.is_empty());
        assert_eq!(
            serde_json::to_value(&a).unwrap()["size"],
            serde_json::json!(42)
        );
    }

    #[test]
    fn fractional_size_is_refused() {
        let err = serde_json::from_str::<Volume>(&volume_json("42.5")).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }
}
