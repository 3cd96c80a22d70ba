//! Injected failures, deterministic under a seed.
//!
//! A spec such as `429=0.05,409=0.05,502=0.05,504=0.05,503=0.1,500=0.02,stall=0.01,action_error=0.1`
//! gives, per request, the chance of each answer instead of the real one
//! (`stall` processes the request and then holds the answer back past the
//! client's timeout, like a lost response), and per new action the chance
//! that it ends in `error`.

use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A 429 `rate_limit_exceeded`.
    RateLimited,
    /// A 409 `conflict`.
    Conflict,
    /// A 502 `bad_gateway`.
    BadGateway,
    /// A 503 `unavailable`.
    Unavailable,
    /// A 504 `timeout`.
    GatewayTimeout,
    /// A 500 whose body is HTML, not JSON.
    NonJson500,
    /// Process, then answer too late.
    Stall,
}

/// Chances of each fault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    request: Vec<(Fault, f64)>,
    action_error: f64,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = FaultSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, chance) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': expected KIND=FRACTION, e.g. 429=0.05"))?;
            let chance: f64 = chance
                .parse()
                .ok()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or_else(|| format!("'{part}': the fraction must be a number from 0 to 1"))?;
            let fault = match kind {
                "429" => Fault::RateLimited,
                "409" => Fault::Conflict,
                "502" => Fault::BadGateway,
                "503" => Fault::Unavailable,
                "504" => Fault::GatewayTimeout,
                "500" => Fault::NonJson500,
                "stall" => Fault::Stall,
                "action_error" => {
                    spec.action_error = chance;
                    continue;
                }
                other => {
                    return Err(format!("unknown fault '{other}'; known: 429, 409, 502, 503, 504, 500, stall, action_error"))
                }
            };
            spec.request.push((fault, chance));
        }
        let total: f64 = spec.request.iter().map(|(_, c)| c).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "the request fault fractions add up to {total}, more than 1"
            ));
        }
        Ok(spec)
    }
}

/// The fault dice: a spec and a seeded random source.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    rng: StdRng,
}

impl Faults {
    /// Dice for a spec; the same seed gives the same sequence of draws.
    pub fn new(spec: FaultSpec, seed: u64) -> Self {
        Faults {
            spec,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Draws the fate of one request.
    pub fn draw_request(&mut self) -> Option<Fault> {
        if self.spec.request.is_empty() {
            return None;
        }
        let mut x: f64 = self.rng.gen();
        for (fault, chance) in &self.spec.request {
            if x < *chance {
                return Some(*fault);
            }
            x -= chance;
        }
        None
    }

    /// Draws whether a new action will fail.
    pub fn draw_action_failure(&mut self) -> bool {
        self.spec.action_error > 0.0 && self.rng.gen::<f64>() < self.spec.action_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_draw_deterministically() {
        let spec: FaultSpec = "429=0.5,stall=0.5".parse().unwrap();
        let draws = |seed| {
            let mut f = Faults::new(spec.clone(), seed);
            (0..50).map(|_| f.draw_request()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert!(draws(7).iter().all(Option::is_some));
        let none = Faults::new(FaultSpec::default(), 1).draw_request();
        assert_eq!(none, None);
    }

    #[test]
    fn bad_specs() {
        for (spec, want) in [
            ("429", "expected KIND=FRACTION"),
            ("418=0.1", "unknown fault"),
            ("429=2", "from 0 to 1"),
            ("429=0.6,409=0.6", "add up"),
        ] {
            assert!(
                spec.parse::<FaultSpec>().unwrap_err().contains(want),
                "{spec}"
            );
        }
    }
}
