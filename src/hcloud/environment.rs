//! What the binaries read from their environment, once, at start: the API
//! settings of the official tools (`HCLOUD_TOKEN`, `HCLOUD_ENDPOINT`) and
//! kbv3's own knobs. The library never reads the environment itself; the
//! binaries pass this down.

use std::time::Duration;

use super::policy::{Token, INSECURE_ENV};

/// The environment's API settings.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `HCLOUD_TOKEN`.
    pub token: Option<Token>,
    /// `HCLOUD_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `KBV3_ALLOW_INSECURE_HTTP=1`: `http://` to other hosts is allowed.
    pub allow_insecure_http: bool,
    /// `KBV3_RETRY_BASE_MS`: the first retry delay (tests use milliseconds).
    pub retry_base: Option<Duration>,
    /// `KBV3_POLL_INTERVAL_MS`: the first action poll delay.
    pub poll_interval: Option<Duration>,
}

impl Environment {
    /// Reads the process environment.
    pub fn read() -> Self {
        let text = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let ms = |name: &str| {
            text(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|v| Duration::from_millis(v.max(1)))
        };
        Environment {
            token: text("HCLOUD_TOKEN").map(Token::new),
            endpoint: text("HCLOUD_ENDPOINT"),
            allow_insecure_http: text(INSECURE_ENV).is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
            }),
            retry_base: ms("KBV3_RETRY_BASE_MS"),
            poll_interval: ms("KBV3_POLL_INTERVAL_MS"),
        }
    }
}
