//! Reads what the plan needs: the volume, the server the task names, and the
//! name of the server the volume is attached to. A run with nothing to change
//! costs at most two requests.

use crate::hcloud::{Client, Error};

use super::params::{Params, State};
use super::plan::{Observed, ServerRef, TargetServer};

/// A lookup that failed: the user's message.
pub fn observe(client: &Client, p: &Params) -> Result<Observed, String> {
    let what = p
        .name
        .clone()
        .unwrap_or_else(|| p.id.unwrap_or_default().to_string());
    let read = |e: Error| format!("cannot read volume {what}: {e}");
    let volume = match p.id {
        Some(id) => client.get_volume(id).map_err(read)?,
        None => client
            .volume_by_name(p.name.as_deref().unwrap_or_default())
            .map_err(read)?,
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
                    .get_server(id)
                    .map_err(|e| {
                        format!("cannot read server {id} that volume {what} is attached to: {e}")
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

/// A server by name or id, like the official tools: an all-digit value is
/// tried as an id first, then as a name.
fn resolve_server(client: &Client, spec: &str) -> Result<TargetServer, String> {
    let failed = |e: Error| format!("cannot look up server {spec}: {e}");
    let by_id = match spec.parse::<i64>() {
        Ok(id) => client.get_server(id).map_err(failed)?,
        Err(_) => None,
    };
    let server = match by_id {
        Some(s) => s,
        None => client
            .server_by_name(spec)
            .map_err(failed)?
            .ok_or_else(|| format!("server '{spec}' not found in the project; check the server option (a name or an id)"))?,
    };
    Ok(TargetServer {
        server: ServerRef {
            id: server.id,
            name: server.name,
        },
        location: server.location.name,
    })
}
