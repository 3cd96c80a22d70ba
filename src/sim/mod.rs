//! `hcloud-sim`: a stateful local simulator of the Hetzner Cloud volume API.
//!
//! - [`world`]: the pure state machine; [`operations`]: one function per volume operation.
//! - [`requests`]: request bodies → typed, validated inputs (422 on bad input).
//! - [`query`]: pagination, sorting and label selectors.
//! - [`seed`]: the seed file format and the state file.
//! - [`faults`], [`ratelimit`]: injected failures and the request budget.
//! - [`devices`]: optional loop-device backing of volumes (root only).
//! - [`routes`]: the typed route table and each route's handler.
//! - [`catalog`]: the read-only networks, datacenters and server types servers reference.
//! - [`http`]: HTTP/1.1 on a thread per connection.
//! - [`server`]: the shell around the world: auth, rate limit, faults, headers, logs.

pub mod catalog;
pub mod devices;
pub mod faults;
pub mod http;
pub mod operations;
pub mod query;
pub mod ratelimit;
pub mod requests;
pub mod routes;
pub mod seed;
pub mod server;
pub mod world;

use crate::hcloud::ApiCode;
use serde_json::{json, Value};

/// An error answer of the simulator, in the API's envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: ApiCode,
    pub message: String,
    pub details: Value,
}

impl SimError {
    /// An error without details.
    pub fn new(status: u16, code: ApiCode, message: impl Into<String>) -> Self {
        SimError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// A 422 `invalid_input` naming the field, in the details shape hcloud-go requires.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        SimError {
            status: 422,
            code: ApiCode::InvalidInput,
            message: format!("invalid input in field '{field}'"),
            details: json!({ "fields": [{ "name": field, "messages": [problem] }] }),
        }
    }

    /// A 404 `not_found` for a kind of object.
    pub fn not_found(kind: &str) -> Self {
        SimError::new(404, ApiCode::NotFound, format!("{kind} not found"))
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message, "details": self.details } })
    }
}
