//! The PH3-01 diff (`volume_diff_v3.json`): plan + existing volumes →
//! volumes to delete, to create, to fix, already right, and left alone (pure).
//!
//! Strategy "destroy and recreate all" (the report's Option A), bounded by
//! two rules that keep data safe:
//! - a volume that bears a target name (`kbv3-<host>-data` of a fleet host)
//!   is never deleted: when it is not right yet (unattached, on another fleet
//!   server, too small) it is listed *to fix*;
//! - a volume attached to a server outside the fleet is *left alone*.
//!
//! Every volume attached to a fleet server belongs to that host and is
//! deleted, whatever its name. An unattached volume is deleted (an orphan)
//! only when the legacy selector ([`LegacySelector`]: by default names
//! `vol-*`) matches it; any other is left alone, so a project shared with
//! other teams keeps their scratch volumes. The diff records the selector and
//! the server id of every fleet host, so it can only be executed against the
//! servers it was made for. It is validated as a whole ([`fn@validate`]) before
//! anything acts on it.

mod compute;
#[cfg(test)]
mod fixtures;
mod model;
mod selector;
mod validate;

pub use compute::compute;
pub use model::{AlreadyOk, Diff, DiffTotals, ListedVolume, ToCreate, ToFix, STRATEGY};
pub use selector::LegacySelector;
pub use validate::validate;
