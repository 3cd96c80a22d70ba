//! The one integration-test binary (see Cargo.toml `[[test]]`).

// Shared harness: start hcloud-sim on a free port, read its logs.
mod util;
// The Rust client against a spawned simulator: every endpoint, pagination, waits.
mod client;
// Hostile endpoints: echoed tokens, endless 429s, redirects, huge and endless answers, stalls.
mod hostile;
// Retries, rate limits, stalls and permanent failures, driven by fault injection.
mod faults;
// Simulator invariants under random operation sequences.
mod sim_invariants;
