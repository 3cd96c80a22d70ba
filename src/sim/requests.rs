//! Request bodies → typed, validated inputs. Each failure is the API's 422
//! `invalid_input` naming the field (or 400 `json_error` for broken JSON).

use serde_json::{Map, Value};

use crate::hcloud::rules;
use crate::hcloud::types::Labels;
use crate::hcloud::ApiCode;

use super::SimError;

/// Where a new volume goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A location, by id or name.
    Location(String),
    /// A server id: created in its location and attached.
    Server(i64),
}

/// A validated `POST /volumes`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateVolume {
    pub name: String,
    pub size: u32,
    pub placement: Placement,
    pub labels: Labels,
    pub automount: bool,
    pub format: Option<String>,
}

/// A validated `PUT /volumes/{id}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateVolume {
    pub name: Option<String>,
    pub labels: Option<Labels>,
}

/// Parses a body; an empty body is `{}` (hcloud-python sends none on detach).
pub fn parse_body(raw: &str) -> Result<Map<String, Value>, SimError> {
    if raw.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SimError::new(
            400,
            ApiCode::JsonError,
            "request body must be a JSON object",
        )),
        Err(e) => Err(SimError::new(
            400,
            ApiCode::JsonError,
            format!("invalid JSON in request body: {e}"),
        )),
    }
}

/// Validates a create request.
pub fn create_volume(body: &Map<String, Value>) -> Result<CreateVolume, SimError> {
    let name = volume_name(body.get("name"))?
        .ok_or_else(|| SimError::invalid_field("name", "is required"))?;
    let size = match body.get("size") {
        None | Some(Value::Null) => return Err(SimError::invalid_field("size", "is required")),
        Some(v) => size(v)?,
    };
    let location = match body.get("location") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) if n.as_i64().is_some() => Some(n.to_string()),
        Some(_) => {
            return Err(SimError::invalid_field(
                "location",
                "must be a location id or name",
            ))
        }
    };
    let server = match body.get("server") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| SimError::invalid_field("server", "must be a server id"))?,
        ),
    };
    let placement = match (location, server) {
        (Some(l), None) => Placement::Location(l),
        (None, Some(s)) => Placement::Server(s),
        _ => {
            return Err(SimError::invalid_field(
                "location",
                "exactly one of location and server is required",
            ))
        }
    };
    let automount = optional_bool(body, "automount")?.unwrap_or(false);
    if automount && !matches!(placement, Placement::Server(_)) {
        return Err(SimError::invalid_field("automount", "requires server"));
    }
    let format = match body.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f == "ext4" || f == "xfs" => Some(f.clone()),
        Some(_) => return Err(SimError::invalid_field("format", "must be xfs or ext4")),
    };
    Ok(CreateVolume {
        name,
        size,
        placement,
        labels: labels(body.get("labels"))?.unwrap_or_default(),
        automount,
        format,
    })
}

/// Validates an update request (`labels: null` clears, like hcloud-go's nil map).
pub fn update_volume(body: &Map<String, Value>) -> Result<UpdateVolume, SimError> {
    let labels = match body.get("labels") {
        Some(Value::Null) => Some(Labels::new()),
        other => labels(other)?,
    };
    Ok(UpdateVolume {
        name: volume_name(body.get("name"))?,
        labels,
    })
}

/// The `server` and `automount` of an attach request.
pub fn attach(body: &Map<String, Value>) -> Result<(i64, bool), SimError> {
    let server = body
        .get("server")
        .and_then(Value::as_i64)
        .ok_or_else(|| SimError::invalid_field("server", "is required and must be a server id"))?;
    Ok((server, optional_bool(body, "automount")?.unwrap_or(false)))
}

/// The new size of a resize request.
pub fn resize(body: &Map<String, Value>) -> Result<u32, SimError> {
    size(
        body.get("size")
            .ok_or_else(|| SimError::invalid_field("size", "is required"))?,
    )
}

/// The `delete` flag of a change_protection request (`None`: no change).
pub fn protection(body: &Map<String, Value>) -> Result<Option<bool>, SimError> {
    optional_bool(body, "delete")
}

fn volume_name(v: Option<&Value>) -> Result<Option<String>, SimError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            rules::check_volume_name(s).map_err(|e| SimError::invalid_field("name", e))?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(SimError::invalid_field("name", "must be a string")),
    }
}

fn size(v: &Value) -> Result<u32, SimError> {
    let n = v
        .as_i64()
        .ok_or_else(|| SimError::invalid_field("size", "must be an integer"))?;
    rules::check_volume_size(n).map_err(|_| {
        SimError::invalid_field(
            "size",
            format!(
                "must be between {} and {}",
                rules::MIN_VOLUME_GB,
                rules::MAX_VOLUME_GB
            ),
        )
    })?;
    Ok(n as u32)
}

fn optional_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, SimError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(SimError::invalid_field(field, "must be a boolean")),
    }
}

fn labels(v: Option<&Value>) -> Result<Option<Labels>, SimError> {
    let Some(v) = v else { return Ok(None) };
    let Value::Object(m) = v else {
        return Err(SimError::invalid_field("labels", "must be an object"));
    };
    let mut out = Labels::new();
    for (k, v) in m {
        let Value::String(s) = v else {
            return Err(SimError::invalid_field(
                "labels",
                format!("value of '{k}' must be a string"),
            ));
        };
        rules::check_label(k, s).map_err(|e| SimError::invalid_field("labels", e))?;
        out.insert(k.clone(), s.clone());
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_rules() {
        let ok = create_volume(&obj(
            json!({"name":"a","size":10,"location":"nbg1","format":"xfs"}),
        ))
        .unwrap();
        assert_eq!(ok.placement, Placement::Location("nbg1".into()));
        let by_id = create_volume(&obj(json!({"name":"a","size":10,"location":2}))).unwrap();
        assert_eq!(by_id.placement, Placement::Location("2".into()));
        let cases = [
            (json!({"size":10,"location":"nbg1"}), "name"),
            (json!({"name":"-a","size":10,"location":"nbg1"}), "name"),
            (json!({"name":"a","location":"nbg1"}), "size"),
            (json!({"name":"a","size":5,"location":"nbg1"}), "size"),
            (json!({"name":"a","size":10.5,"location":"nbg1"}), "size"),
            (json!({"name":"a","size":10}), "location"),
            (
                json!({"name":"a","size":10,"location":"nbg1","server":1}),
                "location",
            ),
            (
                json!({"name":"a","size":10,"location":"nbg1","automount":true}),
                "automount",
            ),
            (
                json!({"name":"a","size":10,"location":"nbg1","format":"btrfs"}),
                "format",
            ),
            (
                json!({"name":"a","size":10,"location":"nbg1","labels":{"k":1}}),
                "labels",
            ),
        ];
        for (body, field) in cases {
            let err = create_volume(&obj(body.clone())).unwrap_err();
            assert_eq!(err.details["fields"][0]["name"], json!(field), "{body}");
            assert_eq!(err.status, 422);
        }
    }

    #[test]
    fn empty_body_is_an_empty_object_and_junk_is_json_error() {
        assert!(parse_body("").unwrap().is_empty());
        assert_eq!(parse_body("{nope").unwrap_err().code, ApiCode::JsonError);
        assert_eq!(parse_body("[1]").unwrap_err().status, 400);
    }
}
