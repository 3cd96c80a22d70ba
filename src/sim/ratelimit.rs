//! The request budget: a token bucket per API token, refilled continuously,
//! like the API's 3600 requests per hour.

use std::collections::HashMap;

/// The state of one bucket after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the bucket will be full again.
    pub reset: u64,
    /// False when the request must be refused with 429.
    pub allowed: bool,
}

/// Token buckets keyed by token.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u64,
    window_ms: u64,
    buckets: HashMap<String, (f64, u64)>,
}

impl RateLimiter {
    /// `limit` requests per `window_ms` (an hour for the real API).
    pub fn new(limit: u64, window_ms: u64) -> Self {
        RateLimiter {
            limit: limit.max(1),
            window_ms: window_ms.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one request from `key`'s bucket at time `now_ms`.
    pub fn take(&mut self, key: &str, now_ms: u64) -> Budget {
        let per_ms = self.limit as f64 / self.window_ms as f64;
        let (level, last) = self
            .buckets
            .entry(key.to_string())
            .or_insert((self.limit as f64, now_ms));
        *level = (*level + (now_ms.saturating_sub(*last)) as f64 * per_ms).min(self.limit as f64);
        *last = now_ms;
        let allowed = *level >= 1.0;
        if allowed {
            *level -= 1.0;
        }
        let missing = self.limit as f64 - *level;
        let reset = (now_ms + (missing / per_ms).ceil() as u64).div_ceil(1000);
        Budget {
            limit: self.limit,
            remaining: level.floor() as u64,
            reset,
            allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills() {
        let mut r = RateLimiter::new(3, 3000);
        let taken: Vec<_> = (0..4)
            .map(|_| r.take("t", 0))
            .map(|b| (b.allowed, b.remaining))
            .collect();
        assert_eq!(taken, vec![(true, 2), (true, 1), (true, 0), (false, 0)]);
        assert!(r.take("t", 1000).allowed);
        assert!(r.take("other", 0).allowed, "buckets are per token");
        let b = r.take("t", 1000);
        assert!(!b.allowed);
        assert_eq!(b.reset, 4);
    }
}
