//! Time for the client: what "now" is (an instant, and wall time) and how to wait. Injected so that
//! retry and rate-limit tests can record the waits instead of sleeping them.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// A source of time and of waiting.
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Waits for `d`.
    fn sleep(&self, d: Duration);
    /// Wall time in milliseconds since the epoch (what `RateLimit-Reset` counts from).
    fn wall_ms(&self) -> u64 {
        crate::clock::now_ms()
    }
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}
