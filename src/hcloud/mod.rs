//! The Hetzner Cloud API, volume subset: models ([`types`]), error codes
//! ([`code`]), errors ([`error`]), retry and polling delays ([`backoff`]), the blocking HTTP
//! client ([`client`], one file per job) configured by [`config`], with its [`clock`], what it refuses to do with the
//! token ([`policy`]), the settings the binaries read ([`environment`]), and
//! the API's naming and label rules ([`rules`]), which the simulator enforces
//! and the module checks before sending anything.

pub mod backoff;
pub mod client;
pub mod clock;
pub mod code;
pub mod config;
pub mod environment;
pub mod error;
pub mod policy;
pub mod rules;
pub mod selector;
pub mod types;

pub use client::{Client, VolumeFilter, Waited};
pub use code::ApiCode;
pub use config::Config;
pub use environment::Environment;
pub use error::{ApiError, Error};
