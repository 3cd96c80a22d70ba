//! Delays between retries and between action polls, and the pure decision of
//! which failures are worth retrying.
//!
//! One [`Backoff`] type drives both HTTP retries and action polling (as in
//! hcloud-go); the [`RetryPolicy`] adds the budgets.

use std::time::Duration;

use rand::Rng;

use super::code::ApiCode;
use super::error::{Error, TransportKind};

/// How long to wait before attempt `n + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay every time.
    Constant(Duration),
    /// `base * multiplier^n`, capped; with jitter, a uniform draw between
    /// `base` and that value ("full jitter" above the base).
    Exponential {
        base: Duration,
        multiplier: f64,
        cap: Duration,
        jitter: bool,
    },
}

impl Backoff {
    /// The delay after `retries` earlier attempts.
    pub fn delay(&self, retries: u32, rng: &mut impl Rng) -> Duration {
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Exponential {
                base,
                multiplier,
                cap,
                jitter,
            } => {
                let grown = base.as_secs_f64() * multiplier.powi(retries.min(64) as i32);
                let top = grown.min(cap.as_secs_f64()).max(base.as_secs_f64());
                let secs = if jitter && top > base.as_secs_f64() {
                    rng.gen_range(base.as_secs_f64()..=top)
                } else {
                    top
                };
                Duration::from_secs_f64(secs)
            }
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Give up: the answer will not change.
    No,
    /// Retry after the backoff delay.
    Backoff,
    /// Retry a few times only: `unavailable` (503) may be a long outage.
    Briefly,
}

/// The retry budgets of the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries for transient errors (conflict, rate limit, locked, 502/504, timeouts).
    pub max_retries: u32,
    /// Retries for `unavailable` (503).
    pub max_unavailable_retries: u32,
    /// The delay between attempts.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::with_base(Duration::from_secs(1))
    }
}

impl RetryPolicy {
    /// The default budgets with another base delay (tests use milliseconds).
    pub fn with_base(base: Duration) -> Self {
        RetryPolicy {
            max_retries: 5,
            max_unavailable_retries: 2,
            backoff: Backoff::Exponential {
                base,
                multiplier: 2.0,
                cap: Duration::from_secs(60),
                jitter: true,
            },
        }
    }
}

/// Decides whether a failed request is worth another attempt.
///
/// Retried like the official clients: `conflict`, `rate_limit_exceeded`,
/// `bad_gateway`, `timeout`, bare 502/504 and transport timeouts. Also
/// retried, unlike them: `locked` (an action is running; it ends soon) and
/// transport errors such as a reset connection. `unavailable` is retried only
/// briefly. Every other 4xx is final.
pub fn retry_decision(err: &Error) -> Retry {
    match err {
        Error::Api(e) => match e.code {
            ApiCode::Conflict
            | ApiCode::RateLimitExceeded
            | ApiCode::BadGateway
            | ApiCode::Timeout
            | ApiCode::Locked => Retry::Backoff,
            ApiCode::Unavailable => Retry::Briefly,
            _ if e.status == 502 || e.status == 504 => Retry::Backoff,
            _ => Retry::No,
        },
        Error::UnexpectedResponse {
            status: 502 | 504, ..
        } => Retry::Backoff,
        Error::UnexpectedResponse { status: 503, .. } => Retry::Briefly,
        Error::Transport {
            kind: TransportKind::Timeout | TransportKind::Connection | TransportKind::Connect,
            ..
        } => Retry::Backoff,
        _ => Retry::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcloud::error::ApiError;
    use rand::rngs::mock::StepRng;
    use rand::SeedableRng;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(ApiError {
            status,
            code: ApiCode::parse(code),
            message: "m".into(),
            details: None,
            correlation_id: None,
        })
    }

    #[test]
    fn exponential_without_jitter_doubles_up_to_the_cap() {
        let b = Backoff::Exponential {
            base: Duration::from_secs(1),
            multiplier: 2.0,
            cap: Duration::from_secs(60),
            jitter: false,
        };
        let mut rng = StepRng::new(0, 0);
        let got: Vec<u64> = (0..8).map(|n| b.delay(n, &mut rng).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jitter_stays_between_base_and_the_grown_delay() {
        let b = RetryPolicy::default().backoff;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 0..10 {
            let d = b.delay(n, &mut rng).as_secs_f64();
            let top = (2f64.powi(n as i32)).min(60.0);
            assert!((1.0..=top.max(1.0)).contains(&d), "retry {n}: {d}");
        }
    }

    #[test]
    fn retry_table() {
        let cases = [
            (api(409, "conflict"), Retry::Backoff),
            (api(409, "uniqueness_error"), Retry::No),
            (api(429, "rate_limit_exceeded"), Retry::Backoff),
            (api(423, "locked"), Retry::Backoff),
            (api(423, "protected"), Retry::No),
            (api(502, "bad_gateway"), Retry::Backoff),
            (api(504, "timeout"), Retry::Backoff),
            (api(503, "unavailable"), Retry::Briefly),
            (api(404, "not_found"), Retry::No),
            (api(422, "invalid_input"), Retry::No),
            (api(500, "server_error"), Retry::No),
            (
                Error::UnexpectedResponse {
                    request: "GET /".into(),
                    status: 502,
                    excerpt: String::new(),
                },
                Retry::Backoff,
            ),
            (
                Error::UnexpectedResponse {
                    request: "GET /".into(),
                    status: 500,
                    excerpt: String::new(),
                },
                Retry::No,
            ),
            (
                Error::Transport {
                    request: "GET /".into(),
                    reason: "timed out".into(),
                    kind: TransportKind::Timeout,
                },
                Retry::Backoff,
            ),
            (
                Error::Transport {
                    request: "GET /".into(),
                    reason: "connection reset".into(),
                    kind: TransportKind::Connection,
                },
                Retry::Backoff,
            ),
            (
                Error::Transport {
                    request: "GET /".into(),
                    reason: "invalid peer certificate".into(),
                    kind: TransportKind::Permanent,
                },
                Retry::No,
            ),
            (
                Error::Redirect {
                    request: "GET /".into(),
                    status: 302,
                    location: None,
                },
                Retry::No,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(retry_decision(&err), want, "{err}");
        }
    }
}
