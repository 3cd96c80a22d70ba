//! How the client connects, retries, polls and how long it may take: the
//! settings, resolved from explicit values and the environment, with the
//! endpoint and the token checked before anything is sent.

use std::sync::Arc;
use std::time::Duration;

use super::backoff::{Backoff, RetryPolicy};
use super::clock::{Clock, SystemClock};
use super::environment::Environment;
use super::error::Error;
use super::policy::{check_endpoint, check_token, Token};

/// The public API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";
/// The default budget of one request, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How the client connects, retries, polls and how long it may take.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL including `/v1`, without a trailing slash (checked by [`check_endpoint`]).
    pub endpoint: String,
    pub token: Token,
    pub connect_timeout: Duration,
    /// Budget for one request, answer included (never past the deadline).
    pub request_timeout: Duration,
    /// The whole client's time, from `Client::new`: `None` for no deadline.
    pub deadline: Option<Duration>,
    pub retry: RetryPolicy,
    /// Delay between polls of running actions.
    pub poll: Backoff,
    pub user_agent: String,
    /// With fewer requests left than this, space requests one refill apart (0: never).
    pub pace_below: u64,
    /// At most this many pages of one list.
    pub max_pages: u32,
    /// Answers larger than this are refused.
    pub max_body_bytes: u64,
    /// Time and waiting (tests record the waits).
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// A configuration from explicit values, falling back to the
    /// environment's `HCLOUD_TOKEN` and `HCLOUD_ENDPOINT` like the official
    /// tools. The endpoint and the token are checked here, before anything
    /// is sent ([`check_endpoint`], [`check_token`]).
    pub fn resolve(
        token: Option<String>,
        endpoint: Option<String>,
        allow_insecure_http: bool,
        env: &Environment,
    ) -> Result<Config, Error> {
        let token = token
            .filter(|t| !t.is_empty())
            .map(Token::new)
            .or_else(|| env.token.clone())
            .ok_or_else(|| {
                Error::Config("no API token: set the api_token option or the HCLOUD_TOKEN environment variable".into())
            })?;
        check_token(token.expose())?;
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .or_else(|| env.endpoint.clone())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let endpoint = check_endpoint(&endpoint, allow_insecure_http || env.allow_insecure_http)?;
        let poll_base = env.poll_interval.unwrap_or(Duration::from_millis(500));
        Ok(Config {
            endpoint,
            token,
            connect_timeout: Duration::from_secs(10),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            deadline: None,
            retry: RetryPolicy::with_base(env.retry_base.unwrap_or(Duration::from_secs(1))),
            poll: Backoff::Exponential {
                base: poll_base,
                multiplier: 1.5,
                cap: Duration::from_secs(5).max(poll_base),
                jitter: false,
            },
            user_agent: format!("kbv3/{}", env!("CARGO_PKG_VERSION")),
            pace_below: 5,
            max_pages: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_never_printed() {
        let cfg = Config::resolve(
            Some("s3cr3t-token".into()),
            Some("http://127.0.0.1:1/v1/".into()),
            false,
            &Environment::default(),
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(cfg.endpoint, "http://127.0.0.1:1/v1");
    }
}
