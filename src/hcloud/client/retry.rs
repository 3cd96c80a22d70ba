//! The retry loop: send, and on failure decide whether to send again
//! ([`retry_decision`]), after how long, and what to report when not.

use reqwest::Method;
use serde_json::Value;

use super::transport::{Answer, SendError};
use super::Client;
use crate::hcloud::backoff::{retry_decision, Retry};
use crate::hcloud::code::ApiCode;
use crate::hcloud::error::Error;

impl Client {
    /// Sends a request. Retries what can change, within the retry budget and
    /// the deadline; a 429 is waited out for as long as the deadline allows,
    /// without counting against the retry budget.
    pub(super) fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        let request_line = format!("{method} {path}");
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut brief_retries = 0u32;
        let mut limited = 0u32;
        // An earlier attempt whose answer was lost may have taken effect.
        let mut unsure = false;
        loop {
            attempts += 1;
            let SendError { error, wait_hint } =
                match self.send_once(method.clone(), &request_line, path, query, body) {
                    Ok(answer) => return Ok(answer),
                    Err(failed) => *failed,
                };
            let rate_limited = error.is(&ApiCode::RateLimitExceeded);
            let allowed = match retry_decision(&error) {
                Retry::No => false,
                // Without a deadline, 429s count against the retries like the rest.
                _ if rate_limited && self.deadline.is_some() => true,
                Retry::Backoff => retries < self.cfg.retry.max_retries,
                Retry::Briefly => {
                    brief_retries += 1;
                    brief_retries <= self.cfg.retry.max_unavailable_retries
                        && retries < self.cfg.retry.max_retries
                }
            };
            let give_up = |error: Error| {
                if attempts > 1 {
                    Error::RetriesExhausted {
                        attempts,
                        last: Box::new(error),
                        unsure,
                    }
                } else {
                    error
                }
            };
            if !allowed {
                return Err(give_up(error));
            }
            let backoff = self
                .cfg
                .retry
                .backoff
                .delay(retries, &mut *self.rng.lock().expect("rng lock"));
            let pause = match &wait_hint {
                Some(hint) if rate_limited => {
                    limited += 1;
                    self.rate_limit_pause(hint, limited)
                }
                _ => backoff,
            };
            if pause >= self.remaining() {
                return Err(match wait_hint.filter(|_| rate_limited) {
                    Some(hint) => Error::RateLimited {
                        request: request_line,
                        next_in: hint.next_in,
                        full_at: hint.full_at,
                    },
                    None => self
                        .deadline_error(format!("retrying {request_line}"), Some(give_up(error))),
                });
            }
            unsure |= error.outcome_unknown();
            if !rate_limited || self.deadline.is_none() {
                retries += 1;
            }
            self.stats.lock().expect("stats lock").retries += 1;
            self.cfg.clock.sleep(pause);
        }
    }
}
