//! kbv3: Ansible tooling for the phase-3 Hetzner Cloud volume rebuild.
//!
//! Map of the crate:
//! - [`hcloud`]: a blocking client for the volume part of the Hetzner Cloud API
//!   (typed models, typed errors, retries, action waiting) and the naming and
//!   label rules the API enforces.
//! - [`sim`]: `hcloud-sim`, a stateful local simulator of that API: a pure
//!   [`sim::world::World`] and a thin HTTP shell around it.
//! - [`reconcile`]: the core both modules share: the typed desired state,
//!   observation, the pure planner, the guarded steps, and what a real run
//!   keeps beside its requests (host locks, the journal of every change).
//! - [`ansible`]: the binary-module protocol: args, the one failure shape,
//!   the run's client.
//! - [`modules`]: `kbv3_volume` (one volume) and `kbv3_volumes` (a whole
//!   fleet in one task), peers on the reconcile core.
//! - [`fleet`]: the fleet files (`servers_v3.tsv`, role rules), the inventory
//!   and the PH3-01 plan, snapshot and diff.
//! - [`multicall`]: the one binary that is both modules and the inventory tool.
//! - [`fsutil`], [`clock`]: atomic file writes and timestamps, shared by the binaries.

pub mod ansible;
pub mod clock;
pub mod fleet;
pub mod fsutil;
pub mod hcloud;
pub mod modules;
pub mod multicall;
pub mod reconcile;
pub mod sim;
