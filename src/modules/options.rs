//! Option shapes both modules share, each declared once: the fields that
//! say what a volume should be ([`volume_options!`]), those of the API
//! connection ([`connection_options!`]), and their conversions.

use serde::Deserializer;

use crate::ansible::convert::{choice, custom, opt, to_int};
use crate::hcloud::rules;
use crate::reconcile::desired::{Format, State};

/// Declares an options struct whose first fields say what a volume should
/// be: `name`, `size`, `server`, `move`, `location`, `format`, `automount`,
/// `labels` and `delete_protection`, followed by the struct's own fields.
/// One declaration serves `kbv3_volume` and each entry of `kbv3_volumes`;
/// `desired()` builds the typed [`crate::reconcile::desired::Desired`].
macro_rules! volume_options {
    ($(#[$attr:meta])* pub struct $name:ident { $($(#[$fattr:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        pub struct $name {
            /// The volume's name (`kbv3_volume`: required unless `id` is given).
            #[serde(default, deserialize_with = "crate::ansible::convert::opt_string")]
            pub name: Option<String>,
            /// Size in GB: required to create; grows an existing volume; never shrinks.
            #[serde(default, deserialize_with = "crate::modules::options::size")]
            pub size: Option<u32>,
            /// The server (name or id) the volume must be attached to (with state present).
            #[serde(default, deserialize_with = "crate::ansible::convert::opt_string")]
            pub server: Option<String>,
            /// Detach from another server and attach to `server` (otherwise that fails).
            #[serde(default, rename = "move", deserialize_with = "crate::ansible::convert::boolean")]
            pub move_volume: bool,
            /// Location for a new volume; defaults to the server's. Volumes cannot move.
            #[serde(default, deserialize_with = "crate::ansible::convert::opt_string")]
            pub location: Option<String>,
            /// Filesystem Hetzner formats a new volume with.
            #[serde(default, deserialize_with = "crate::modules::options::format")]
            pub format: Option<crate::reconcile::desired::Format>,
            /// Let the server mount the volume at /mnt/HC_Volume_<id> (on create or attach).
            #[serde(default, deserialize_with = "crate::ansible::convert::boolean")]
            pub automount: bool,
            /// When given, the volume's labels become exactly these; omitted: untouched.
            #[serde(default, deserialize_with = "crate::ansible::convert::labels")]
            pub labels: Option<crate::hcloud::types::Labels>,
            /// Delete protection; omitted: untouched.
            #[serde(default, deserialize_with = "crate::ansible::convert::opt_bool")]
            pub delete_protection: Option<bool>,
            $($(#[$fattr])* pub $field: $ty,)*
        }

        impl $name {
            /// The typed desired state of these options, for the volume
            /// `id` (when known) in `state`, guarded by `expect`.
            pub fn desired(
                &self,
                id: Option<i64>,
                state: crate::reconcile::desired::State,
                expect: Option<crate::reconcile::desired::Expect>,
            ) -> crate::reconcile::desired::Desired {
                crate::reconcile::desired::Desired {
                    name: self.name.clone(),
                    id,
                    state,
                    size: self.size,
                    server: self.server.clone(),
                    move_volume: self.move_volume,
                    location: self.location.clone(),
                    format: self.format,
                    automount: self.automount,
                    labels: self.labels.clone(),
                    delete_protection: self.delete_protection,
                    expect,
                }
            }
        }
    };
}
pub(crate) use volume_options;

/// Appends the options of the API connection (`allow_insecure_http`,
/// `api_token`, `api_endpoint`) to an options struct that has
/// `wait_timeout` and `request_timeout`, and gives it `run_client()`. The
/// struct is declared by `options!` (as written) or [`volume_options!`].
macro_rules! connection_options {
    ($declare:ident! { $(#[$attr:meta])* pub struct $name:ident { $($body:tt)* } }) => {
        $crate::modules::options::$declare! {
            $(#[$attr])*
            pub struct $name {
                $($body)*
                /// Allow http:// to a host other than this machine (the token then crosses the network unencrypted).
                #[serde(default, deserialize_with = "crate::ansible::convert::boolean")]
                pub allow_insecure_http: bool,
                /// API token; default the HCLOUD_TOKEN environment variable. Never printed.
                #[serde(default, deserialize_with = "crate::ansible::convert::opt_string")]
                pub api_token: Option<String>,
                /// API endpoint; default HCLOUD_ENDPOINT, else https://api.hetzner.cloud/v1.
                #[serde(default, deserialize_with = "crate::ansible::convert::opt_string")]
                pub api_endpoint: Option<String>,
            }
        }

        impl $name {
            /// What the run's API client is made of, with room for
            /// `in_flight` more requests at once.
            pub fn run_client(&self, in_flight: u64) -> crate::ansible::client::RunClient {
                crate::ansible::client::RunClient {
                    token: self.api_token.clone(),
                    endpoint: self.api_endpoint.clone(),
                    allow_insecure_http: self.allow_insecure_http,
                    wait_timeout: self.wait_timeout,
                    request_timeout: self.request_timeout,
                    in_flight,
                }
            }
        }
    };
}
pub(crate) use connection_options;

/// Declares an options struct as written (for [`connection_options!`]).
macro_rules! options {
    ($($item:tt)*) => { $($item)* };
}
pub(crate) use options;

/// A volume size in GB, within what Hetzner allows.
///
/// # Errors
/// The message for the user: not a whole number, or outside Hetzner's sizes.
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    opt(d, |v| {
        let n = to_int(v)?;
        rules::check_volume_size(n)?;
        u32::try_from(n).map_err(|e| e.to_string())
    })
}

/// `ext4` or `xfs`.
///
/// # Errors
/// The message for the user: not one of the formats.
pub fn format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Format>, D::Error> {
    opt(d, |v| {
        choice(v, &[("ext4", Format::Ext4), ("xfs", Format::Xfs)])
    })
}

/// `present`, `detached` or `absent`.
///
/// # Errors
/// The message for the user: not one of the states.
pub fn state<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
    let choices = [
        ("present", State::Present),
        ("detached", State::Detached),
        ("absent", State::Absent),
    ];
    custom(choice(&serde::Deserialize::deserialize(d)?, &choices))
}
