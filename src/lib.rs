//! kbv3: Ansible tooling for the phase-3 Hetzner Cloud volume rebuild.
//!
//! Map of the crate:
//! - [`hcloud`]: a blocking client for the volume part of the Hetzner Cloud API
//!   (typed models, typed errors, retries, action waiting) and the naming and
//!   label rules the API enforces.
//! - [`sim`]: `hcloud-sim`, a stateful local simulator of that API: a pure
//!   [`sim::world::World`] and a thin HTTP shell around it.
//! - [`module`]: the `kbv3_volume` Ansible module: parse, observe, plan, apply.
//! - [`volumes`]: the `kbv3_volumes` Ansible module: a whole fleet in one task,
//!   on the same planner and steps.
//! - [`reconcile`]: what a real PH3-02 run keeps beside its requests: host
//!   locks, the journal of every change, and the resolution of a killed run's.
//! - [`fleet`]: the fleet files (`servers_v3.tsv`, role rules), the inventory
//!   and the PH3-01 plan, snapshot and diff.
//! - [`multicall`]: the one binary that is both modules and the inventory tool.
//! - [`fsutil`], [`clock`]: atomic file writes and timestamps, shared by the binaries.

pub mod clock;
pub mod fleet;
pub mod fsutil;
pub mod hcloud;
pub mod module;
pub mod multicall;
pub mod reconcile;
pub mod sim;
pub mod volumes;
