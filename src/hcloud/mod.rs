//! The Hetzner Cloud API, volume subset: models ([`types`]), error codes
//! ([`code`]), errors ([`error`]), retry and polling delays ([`backoff`]), the blocking HTTP
//! client ([`client`]) and the API's naming and label rules ([`rules`]), which
//! the simulator enforces and the module checks before sending anything.

pub mod backoff;
pub mod client;
pub mod code;
pub mod error;
pub mod rules;
pub mod types;

pub use client::{Client, Config};
pub use code::ApiCode;
pub use error::{ApiError, Error};
