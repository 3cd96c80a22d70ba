//! Keeping within the rate limit: the budget the `RateLimit-*` headers
//! report (read by [`Pacing::from_headers`], pure and table-tested), the
//! spacing of requests when it runs low, and the wait after a 429.

use std::time::{Duration, Instant};

use rand::Rng;

use super::Client;

/// The request budget as the last answer reported it, counted down by the
/// requests sent since.
#[derive(Debug, Default)]
pub(super) struct Budget {
    pub(super) remaining: Option<u64>,
    pub(super) refill: Duration,
    /// The earliest time the next paced request may go.
    next_slot: Option<Instant>,
}

/// What the `RateLimit-*` headers of one answer ask for.
pub(super) struct Pacing {
    /// Requests left, and how long one takes to refill.
    pub(super) budget: Option<(u64, Duration)>,
    /// After a 429.
    pub(super) limited: Option<RateHint>,
}

/// When a rate-limited client may send again.
#[derive(Debug, Clone)]
pub(super) struct RateHint {
    /// One request's refill.
    pub(super) next_in: Duration,
    /// Until the bucket is full (`RateLimit-Reset`).
    pub(super) until_full: Option<Duration>,
    pub(super) full_at: Option<String>,
}

/// The `RateLimit-*` headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Headers {
    pub limit: u64,
    pub remaining: u64,
    /// `RateLimit-Reset`: when the bucket is full, in seconds since the epoch.
    pub reset: Option<u64>,
}

impl Pacing {
    /// What the headers ask for, `now_s` seconds after the epoch. One request
    /// refills in `(RateLimit-Reset − now) / (limit − remaining)` (the bucket
    /// refills evenly until it is full at `RateLimit-Reset`), or 3600 s /
    /// limit when the bucket is full. After a 429: wait that long (never past
    /// `RateLimit-Reset`). After a success with few requests left: wait that
    /// long before the next request.
    pub(super) fn from_headers(h: Headers, now_s: u64, limited: bool) -> Pacing {
        let limit = h.limit.max(1);
        let until_reset = h
            .reset
            .map(|r| Duration::from_secs(r.saturating_sub(now_s)));
        let missing = limit.saturating_sub(h.remaining);
        let refill = match until_reset {
            Some(u) if missing > 0 => u / missing.min(u64::from(u32::MAX)) as u32,
            _ => Duration::from_secs_f64(3600.0 / limit as f64),
        };
        Pacing {
            budget: Some((h.remaining, refill)),
            limited: limited.then(|| RateHint {
                next_in: until_reset
                    .map_or(refill, |u| refill.min(u))
                    .max(Duration::from_millis(100)),
                until_full: until_reset,
                full_at: h
                    .reset
                    .map(|r| crate::clock::rfc3339(r.saturating_mul(1000))),
            }),
        }
    }
}

impl Client {
    /// Takes one request from the budget the last answers reported, shared
    /// by every thread using this client. With fewer than `pace_below` left,
    /// requests are spaced one refill apart (each thread reserves its own
    /// slot), so concurrent workers slow down together instead of running
    /// into 429s. Returns how long to wait before sending.
    pub(super) fn reserve_slot(&self) -> Duration {
        let now = self.cfg.clock.now();
        let mut budget = self.budget.lock().expect("budget lock");
        let Some(left) = budget.remaining else {
            return Duration::ZERO;
        };
        budget.remaining = Some(left.saturating_sub(1));
        if left >= self.cfg.pace_below {
            return Duration::ZERO;
        }
        let slot = budget.next_slot.filter(|s| *s > now).unwrap_or(now);
        budget.next_slot = Some(slot + budget.refill);
        slot - now
    }

    /// The wait after the `n`-th 429 in a row: at least one refill; when
    /// 429s keep coming (many clients share the budget), a draw up to
    /// 2^(n-1) refills, never past the time the bucket is full again nor a
    /// minute, so that the clients spread out instead of all coming back at
    /// the next refill.
    pub(super) fn rate_limit_pause(&self, hint: &RateHint, n: u32) -> Duration {
        let low = hint.next_in;
        let high = low
            .saturating_mul(1 << (n - 1).min(6))
            .min(hint.until_full.unwrap_or(Duration::MAX))
            .min(Duration::from_secs(60))
            .max(low);
        if high == low {
            return low;
        }
        Duration::from_secs_f64(
            self.rng
                .lock()
                .expect("rng lock")
                .gen_range(low.as_secs_f64()..=high.as_secs_f64()),
        )
    }

    /// Records the budget an answer reported.
    pub(super) fn record_budget(&self, pacing: &Pacing) {
        if let Some((remaining, refill)) = pacing.budget {
            let mut budget = self.budget.lock().expect("budget lock");
            budget.remaining = Some(remaining);
            budget.refill = refill;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_say_how_long_one_request_takes_to_refill() {
        let at = |limit, remaining, reset: Option<u64>, limited| {
            Pacing::from_headers(
                Headers {
                    limit,
                    remaining,
                    reset,
                },
                1_000,
                limited,
            )
        };
        let secs = Duration::from_secs;
        // (pacing, requests left, one refill, after a 429: next try, until full)
        let cases = [
            (at(3600, 3600, None, false), 3600, secs(1), None),
            (at(3600, 3590, Some(1_010), false), 3590, secs(1), None),
            (
                at(3600, 0, Some(4_600), true),
                0,
                secs(1),
                Some((secs(1), Some(secs(3600)))),
            ),
            (at(100, 50, Some(1_500), false), 50, secs(10), None),
            // The reset already passed: the next try is still at least 100 ms away.
            (
                at(3600, 0, Some(900), true),
                0,
                secs(0),
                Some((Duration::from_millis(100), Some(secs(0)))),
            ),
            (at(0, 0, None, false), 0, secs(3600), None),
        ];
        for (i, (p, left, refill, hint)) in cases.into_iter().enumerate() {
            assert_eq!(p.budget, Some((left, refill)), "case {i}");
            assert_eq!(
                p.limited.map(|h| (h.next_in, h.until_full)),
                hint,
                "case {i}"
            );
        }
    }
}
