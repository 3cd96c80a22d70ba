//! Reads what the plan needs: the volume, the server the task names, and the
//! name of the server the volume is attached to, from a [`Source`]: the API
//! one request at a time (`kbv3_volume`: a run with nothing to change costs
//! at most two requests), or lists read once for a whole fleet
//! (`kbv3_volumes`).
//!
//! Identity is checked here: a name lookup must find exactly that name, and
//! for `detached`/`absent` an `id` and a `name` given together must name the
//! same volume.

pub use super::source::Source;
use crate::hcloud::types::Volume;
use crate::hcloud::Error;

use super::desired::{Desired, State};
use super::failure::{Code, Refusal};
use super::plan::{Observed, ServerRef, TargetServer};

/// Reads the volume, the target server and the attached server's name.
///
/// # Errors
/// A failed read, a name that is not unique, an id and a name of different volumes, or a server that does not exist.
pub fn observe(client: &dyn Source, p: &Desired) -> Result<Observed, Refusal> {
    let what = p
        .name
        .clone()
        .unwrap_or_else(|| p.id.unwrap_or_default().to_string());
    let read = |e: Error| Refusal::api(&format!("cannot read volume {what}"), &e);
    let volume = match (p.id, p.name.as_deref()) {
        (Some(id), name) => {
            let by_id = client.volume(id).map_err(read)?;
            match name.filter(|_| p.state != State::Present) {
                Some(name) => same_volume(client, id, name, by_id)?,
                None => by_id,
            }
        }
        (None, Some(name)) => volume_named(client, name)?,
        (None, None) => None,
    };
    let target = match (&p.server, p.state) {
        (Some(spec), State::Present) => Some(resolve_server(client, spec)?),
        _ => None,
    };
    let attached_to = match volume.as_ref().and_then(|v| v.server) {
        None => None,
        Some(id) => match target.as_ref().filter(|t| t.server.id == id) {
            Some(t) => Some(t.server.clone()),
            None => {
                let name = client
                    .server(id)
                    .map_err(|e| {
                        Refusal::api(
                            &format!("cannot read server {id} that volume {what} is attached to"),
                            &e,
                        )
                    })?
                    .map_or_else(|| id.to_string(), |s| s.name);
                Some(ServerRef { id, name })
            }
        },
    };
    Ok(Observed {
        volume,
        attached_to,
        target,
    })
}

/// The one volume with exactly this name, or `None`. Two answers is an error:
/// the module never guesses which volume a name meant.
fn volume_named(client: &dyn Source, name: &str) -> Result<Option<Volume>, Refusal> {
    let found = client
        .volumes_named(name)
        .map_err(|e| Refusal::api(&format!("cannot read volume {name}"), &e))?;
    match <[Volume; 1]>::try_from(found) {
        Ok([v]) => Ok(Some(v)),
        Err(found) if found.is_empty() => Ok(None),
        Err(found) => Err(Refusal::new(
            Code::IdentityMismatch,
            format!(
                "{} volumes are named {name} (ids {}); give the id. Nothing was changed.",
                found.len(),
                found
                    .iter()
                    .map(|v| v.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Checks that `id` and `name` name the same volume (`by_id` is what `id` found).
fn same_volume(
    client: &dyn Source,
    id: i64,
    name: &str,
    by_id: Option<Volume>,
) -> Result<Option<Volume>, Refusal> {
    let mismatch = |found: String| {
        Refusal::new(
            Code::IdentityMismatch,
            format!("id {id} and name {name} do not name the same volume: {found}. Nothing was changed; give the id and the name of one volume."),
        )
    };
    match by_id {
        Some(v) if v.name == name => Ok(Some(v)),
        Some(v) => Err(mismatch(format!("volume {id} is named {}", v.name))),
        None => match volume_named(client, name)? {
            Some(other) => Err(mismatch(format!(
                "there is no volume {id}, and {name} is volume {}",
                other.id
            ))),
            None => Ok(None),
        },
    }
}

/// A server by name or id, like the official tools: an all-digit value is
/// tried as an id first, then as a name.
fn resolve_server(client: &dyn Source, spec: &str) -> Result<TargetServer, Refusal> {
    let failed = |e: Error| Refusal::api(&format!("cannot look up server {spec}"), &e);
    let by_id = match spec.parse::<i64>() {
        Ok(id) => client.server(id).map_err(failed)?,
        Err(_) => None,
    };
    let server = match by_id {
        Some(s) => s,
        None => client
            .server_named(spec)
            .map_err(failed)?
            .ok_or_else(|| Refusal::new(Code::NotFound, format!("server '{spec}' not found in the project; check the server option (a name or an id)")))?,
    };
    Ok(TargetServer {
        server: ServerRef {
            id: server.id,
            name: server.name,
        },
        location: server.location.name,
    })
}
