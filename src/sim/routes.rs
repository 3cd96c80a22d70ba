//! The simulator's routes as a typed table: each path it serves is one
//! [`Route`], parsed by [`Route::of`], named by [`Route::template`] (the
//! OpenAPI path, for logs and conformance checks) and handled by
//! [`handle`], which matches every route exhaustively: an endpoint cannot be
//! parsed without a handler, nor handled without a name.

use serde_json::{json, Value};

use super::catalog;
use super::query::{paginate, sort_by, Query, SortKey};
use super::requests;
use super::world::{SimAction, SimServer, SimVolume, World};
use super::SimError;
use crate::hcloud::types::Labels;
use crate::hcloud::ApiCode;

/// A path the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Actions,
    Action,
    Datacenters,
    Datacenter,
    Locations,
    Location,
    Networks,
    Network,
    ServerTypes,
    ServerType,
    Servers,
    Server,
    Volumes,
    Volume,
    VolumesActions,
    VolumesAction,
    VolumeActions,
    VolumeAction,
    Attach,
    Detach,
    Resize,
    ChangeProtection,
}

impl Route {
    /// The route of a path's segments (after `/v1`), if the simulator serves it.
    pub fn of(segments: &[&str]) -> Option<Route> {
        let numeric = |s: &str| s.parse::<i64>().is_ok();
        Some(match segments {
            ["actions"] => Route::Actions,
            ["actions", _] => Route::Action,
            ["datacenters"] => Route::Datacenters,
            ["datacenters", _] => Route::Datacenter,
            ["locations"] => Route::Locations,
            ["locations", _] => Route::Location,
            ["networks"] => Route::Networks,
            ["networks", _] => Route::Network,
            ["server_types"] => Route::ServerTypes,
            ["server_types", _] => Route::ServerType,
            ["servers"] => Route::Servers,
            ["servers", _] => Route::Server,
            ["volumes"] => Route::Volumes,
            ["volumes", "actions"] => Route::VolumesActions,
            ["volumes", "actions", _] => Route::VolumesAction,
            ["volumes", _] => Route::Volume,
            ["volumes", _, "actions"] => Route::VolumeActions,
            ["volumes", _, "actions", "attach"] => Route::Attach,
            ["volumes", _, "actions", "detach"] => Route::Detach,
            ["volumes", _, "actions", "resize"] => Route::Resize,
            ["volumes", _, "actions", "change_protection"] => Route::ChangeProtection,
            ["volumes", _, "actions", a] if numeric(a) => Route::VolumeAction,
            _ => return None,
        })
    }

    /// The OpenAPI path template.
    pub fn template(self) -> &'static str {
        match self {
            Route::Actions => "/actions",
            Route::Action => "/actions/{id}",
            Route::Datacenters => "/datacenters",
            Route::Datacenter => "/datacenters/{id}",
            Route::Locations => "/locations",
            Route::Location => "/locations/{id}",
            Route::Networks => "/networks",
            Route::Network => "/networks/{id}",
            Route::ServerTypes => "/server_types",
            Route::ServerType => "/server_types/{id}",
            Route::Servers => "/servers",
            Route::Server => "/servers/{id}",
            Route::Volumes => "/volumes",
            Route::Volume => "/volumes/{id}",
            Route::VolumesActions => "/volumes/actions",
            Route::VolumesAction => "/volumes/actions/{id}",
            Route::VolumeActions => "/volumes/{id}/actions",
            Route::VolumeAction => "/volumes/{id}/actions/{action_id}",
            Route::Attach => "/volumes/{id}/actions/attach",
            Route::Detach => "/volumes/{id}/actions/detach",
            Route::Resize => "/volumes/{id}/actions/resize",
            Route::ChangeProtection => "/volumes/{id}/actions/change_protection",
        }
    }
}

/// One request, as the world sees it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path's segments after `/v1`.
    pub segments: &'a [&'a str],
    pub query: &'a Query,
    pub body: &'a str,
    /// Milliseconds since the epoch.
    pub now: u64,
    /// The dice say this request's action fails.
    pub fail_action: bool,
}

impl Request<'_> {
    /// The numeric id in segment `i`, if it is one.
    pub fn id_at(&self, i: usize) -> Option<i64> {
        self.segments.get(i).and_then(|s| s.parse::<i64>().ok())
    }

    /// The numeric id in segment `i` (404 when it is not one).
    fn id(&self, i: usize) -> Result<i64, SimError> {
        self.id_at(i).ok_or_else(|| SimError::not_found("resource"))
    }

    /// Refuses every method but `allowed`.
    fn only(&self, allowed: &str, route: Route) -> Result<(), SimError> {
        if self.method == allowed {
            Ok(())
        } else {
            Err(not_allowed(self.method, route))
        }
    }
}

/// A status and a JSON body (none for 204), or the API's error.
pub type Outcome = Result<(u16, Option<Value>), SimError>;

fn ok(v: Value) -> Outcome {
    Ok((200, Some(v)))
}

fn created(v: Value) -> Outcome {
    Ok((201, Some(v)))
}

fn not_allowed(method: &str, route: Route) -> SimError {
    SimError::new(
        405,
        ApiCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", route.template()),
    )
}

/// Runs one request against the world.
pub fn handle(w: &mut World, route: Route, r: &Request) -> Outcome {
    let q = r.query;
    match route {
        Route::Locations => {
            r.only("GET", route)?;
            let mut items: Vec<_> = w
                .locations
                .iter()
                .filter(|l| q.get("name").is_none_or(|n| l.name == n))
                .collect();
            sort_by_id_or_name(&mut items, q, |l| (l.id, l.name.as_str()))?;
            list(q, "locations", items, |l| l)
        }
        Route::Location => {
            r.only("GET", route)?;
            let id = r.id(1)?;
            let l = w.locations.iter().find(|l| l.id == id);
            ok(json!({ "location": l.ok_or_else(|| SimError::not_found("location"))? }))
        }
        Route::Datacenters => {
            r.only("GET", route)?;
            let mut items: Vec<_> = w
                .locations
                .iter()
                .filter(|l| q.get("name").is_none_or(|n| format!("{}-dc3", l.name) == n))
                .collect();
            sort_by_id_or_name(&mut items, q, |l| (l.id, l.name.as_str()))?;
            let (status, mut body) = list(q, "datacenters", items, catalog::datacenter)?;
            if let Some(body) = body.as_mut() {
                body["recommendation"] = json!(w.locations.first().map(|l| l.id));
            }
            Ok((status, body))
        }
        Route::Datacenter => {
            r.only("GET", route)?;
            let id = r.id(1)?;
            let l = w.locations.iter().find(|l| l.id == id);
            let l = l.ok_or_else(|| SimError::not_found("datacenter"))?;
            ok(json!({ "datacenter": catalog::datacenter(l) }))
        }
        Route::Networks => {
            r.only("GET", route)?;
            let selector = q.selector()?;
            q.sort(&["id", "name", "created"])?;
            let items: Vec<Value> = w
                .render_network()
                .into_iter()
                .filter(|n| q.get("name").is_none_or(|name| n["name"] == name))
                .filter(|_| selector.as_ref().is_none_or(|s| s.matches(&Labels::new())))
                .collect();
            list(q, "networks", items, |n| n)
        }
        Route::Network => {
            r.only("GET", route)?;
            let network = w
                .render_network()
                .filter(|_| r.id(1) == Ok(catalog::NETWORK_ID));
            ok(json!({ "network": network.ok_or_else(|| SimError::not_found("network"))? }))
        }
        Route::ServerTypes => {
            r.only("GET", route)?;
            let server_type = catalog::server_type(&w.locations);
            let items: Vec<Value> = [server_type]
                .into_iter()
                .filter(|t| q.get("name").is_none_or(|name| t["name"] == name))
                .collect();
            list(q, "server_types", items, |t| t)
        }
        Route::ServerType => {
            r.only("GET", route)?;
            if r.id(1)? != catalog::SERVER_TYPE_ID {
                return Err(SimError::not_found("server_type"));
            }
            ok(json!({ "server_type": catalog::server_type(&w.locations) }))
        }
        Route::Servers => {
            r.only("GET", route)?;
            let items = select(w.servers.values(), q)?;
            list(q, "servers", items, |s| w.render_server(s))
        }
        Route::Server => {
            r.only("GET", route)?;
            let s = w.servers.get(&r.id(1)?);
            ok(
                json!({ "server": w.render_server(s.ok_or_else(|| SimError::not_found("server"))?) }),
            )
        }
        Route::Volumes => match r.method {
            "GET" => {
                let statuses = q.all("status");
                if let Some(bad) = statuses
                    .iter()
                    .find(|s| !matches!(**s, "creating" | "available"))
                {
                    return Err(SimError::invalid_field(
                        "status",
                        format!("'{bad}' is not creating or available"),
                    ));
                }
                let items = select(w.volumes.values(), q)?;
                list(q, "volumes", items, |v| w.render_volume(v))
            }
            "POST" => {
                let req = requests::create_volume(&requests::parse_body(r.body)?)?;
                let (volume, action, next) = w.create_volume(req, r.now, r.fail_action)?;
                created(json!({ "volume": volume, "action": action, "next_actions": next }))
            }
            _ => Err(not_allowed(r.method, route)),
        },
        Route::Volume => match r.method {
            "GET" => {
                let v = w.volumes.get(&r.id(1)?);
                ok(
                    json!({ "volume": w.render_volume(v.ok_or_else(|| SimError::not_found("volume"))?) }),
                )
            }
            "PUT" => {
                let req = requests::update_volume(&requests::parse_body(r.body)?)?;
                ok(json!({ "volume": w.update_volume(r.id(1)?, req)? }))
            }
            "DELETE" => w.delete_volume(r.id(1)?).map(|_| (204, None)),
            _ => Err(not_allowed(r.method, route)),
        },
        Route::Attach => {
            r.only("POST", route)?;
            let (server, _automount) = requests::attach(&requests::parse_body(r.body)?)?;
            created(json!({ "action": w.attach_volume(r.id(1)?, server, r.now, r.fail_action)? }))
        }
        Route::Detach => {
            r.only("POST", route)?;
            requests::parse_body(r.body)?;
            created(json!({ "action": w.detach_volume(r.id(1)?, r.now, r.fail_action)? }))
        }
        Route::Resize => {
            r.only("POST", route)?;
            let size = requests::resize(&requests::parse_body(r.body)?)?;
            created(json!({ "action": w.resize_volume(r.id(1)?, size, r.now, r.fail_action)? }))
        }
        Route::ChangeProtection => {
            r.only("POST", route)?;
            let delete = requests::protection(&requests::parse_body(r.body)?)?;
            created(json!({ "action": w.change_protection(r.id(1)?, delete, r.now)? }))
        }
        Route::VolumeActions => {
            r.only("GET", route)?;
            let vid = r.id(1)?;
            if !w.volumes.contains_key(&vid) {
                return Err(SimError::not_found("volume"));
            }
            actions_list(w, q, |a| touches(a, vid, "volume"))
        }
        Route::VolumeAction => {
            r.only("GET", route)?;
            let (vid, aid) = (r.id(1)?, r.id(3)?);
            let a = w.actions.get(&aid).filter(|a| touches(a, vid, "volume"));
            action(w, a)
        }
        Route::VolumesActions => {
            r.only("GET", route)?;
            let ids: Vec<i64> = q.all("id").iter().filter_map(|i| i.parse().ok()).collect();
            actions_list(w, q, |a| {
                is_volume_action(a) && (ids.is_empty() || ids.contains(&a.id))
            })
        }
        Route::VolumesAction => {
            r.only("GET", route)?;
            let a = w.actions.get(&r.id(2)?).filter(|a| is_volume_action(a));
            action(w, a)
        }
        Route::Actions => {
            r.only("GET", route)?;
            let ids = q.all("id");
            if ids.is_empty() {
                return Err(SimError::new(
                    410,
                    ApiCode::DeprecatedApiEndpoint,
                    "listing actions without id was removed",
                ));
            }
            let ids: Vec<i64> = ids
                .iter()
                .map(|i| {
                    i.parse().map_err(|_| {
                        SimError::invalid_field("id", format!("'{i}' is not an action id"))
                    })
                })
                .collect::<Result<_, _>>()?;
            actions_list(w, q, |a| ids.contains(&a.id))
        }
        Route::Action => {
            r.only("GET", route)?;
            action(w, w.actions.get(&r.id(1)?))
        }
    }
}

fn action(w: &World, a: Option<&SimAction>) -> Outcome {
    let a = a.ok_or_else(|| SimError::not_found("action"))?;
    ok(json!({ "action": w.render_action(a) }))
}

/// Sorts by `sort=id|name[:asc|:desc]`.
fn sort_by_id_or_name<T>(
    items: &mut [T],
    q: &Query,
    key: impl Fn(&T) -> (i64, &str),
) -> Result<(), SimError> {
    let keys = q.sort(&["id", "name"])?;
    sort_by(items, &keys, |x, f| {
        let (id, name) = key(x);
        if f == "name" {
            SortKey::Text(name.to_string())
        } else {
            SortKey::Int(id)
        }
    });
    Ok(())
}

/// What the server and volume lists filter and sort on.
trait Listed {
    fn id(&self) -> i64;
    fn name(&self) -> &str;
    fn created(&self) -> &str;
    fn labels(&self) -> &Labels;
    fn status(&self) -> &str;
}

/// Both records keep these under the same field names.
macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn id(&self) -> i64 {
                self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn created(&self) -> &str {
                &self.created
            }
            fn labels(&self) -> &Labels {
                &self.labels
            }
            fn status(&self) -> &str {
                &self.status
            }
        }
    )*};
}
listed!(SimServer, SimVolume);

/// The items matching `name`, `label_selector` and `status`, sorted by `sort`.
fn select<'a, T: Listed + 'a>(
    items: impl Iterator<Item = &'a T>,
    q: &Query,
) -> Result<Vec<&'a T>, SimError> {
    let selector = q.selector()?;
    let statuses = q.all("status");
    let mut out: Vec<&T> = items
        .filter(|x| q.get("name").is_none_or(|n| x.name() == n))
        .filter(|x| selector.as_ref().is_none_or(|sel| sel.matches(x.labels())))
        .filter(|x| statuses.is_empty() || statuses.contains(&x.status()))
        .collect();
    let keys = q.sort(&["id", "name", "created"])?;
    sort_by(&mut out, &keys, |x, f| match f {
        "name" => SortKey::Text(x.name().to_string()),
        "created" => SortKey::Text(x.created().to_string()),
        _ => SortKey::Int(x.id()),
    });
    Ok(out)
}

fn touches(a: &SimAction, id: i64, kind: &str) -> bool {
    a.resources.iter().any(|(i, k)| *i == id && k == kind)
}

fn is_volume_action(a: &SimAction) -> bool {
    a.resources.iter().any(|(_, k)| k == "volume")
}

fn actions_list(w: &World, q: &Query, keep: impl Fn(&SimAction) -> bool) -> Outcome {
    let statuses = q.all("status");
    if let Some(bad) = statuses
        .iter()
        .find(|s| !matches!(**s, "running" | "success" | "error"))
    {
        return Err(SimError::invalid_field(
            "status",
            format!("'{bad}' is not running, success or error"),
        ));
    }
    let mut items: Vec<_> = w
        .actions
        .values()
        .filter(|a| keep(a))
        .map(|a| w.render_action(a))
        .filter(|a| statuses.is_empty() || statuses.contains(&a.status.as_str()))
        .collect();
    let keys = q.sort(&["id", "command", "status", "started", "finished"])?;
    sort_by(&mut items, &keys, |a, f| match f {
        "command" => SortKey::Text(a.command.clone()),
        "status" => SortKey::Text(a.status.as_str().to_string()),
        "started" => SortKey::Text(a.started.clone()),
        "finished" => SortKey::Text(a.finished.clone().unwrap_or_default()),
        _ => SortKey::Int(a.id),
    });
    list(q, "actions", items, |a| a)
}

/// One page of `items`, rendered: only the page's items are rendered, so a
/// page of a 10,000-volume project costs what a page of a small one does.
fn list<T, R: serde::Serialize>(
    q: &Query,
    key: &str,
    items: Vec<T>,
    render: impl Fn(T) -> R,
) -> Outcome {
    let (page, per_page) = q.page()?;
    let (items, meta) = paginate(items, page, per_page);
    let items: Vec<R> = items.into_iter().map(render).collect();
    Ok((200, Some(json!({ key: items, "meta": meta }))))
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn paths_parse_to_routes_named_by_their_template() {
        let cases = [
            (vec!["volumes"], Some("/volumes")),
            (vec!["volumes", "actions"], Some("/volumes/actions")),
            (vec!["volumes", "12"], Some("/volumes/{id}")),
            (
                vec!["volumes", "12", "actions", "7"],
                Some("/volumes/{id}/actions/{action_id}"),
            ),
            (
                vec!["volumes", "12", "actions", "detach"],
                Some("/volumes/{id}/actions/detach"),
            ),
            (vec!["networks", "1"], Some("/networks/{id}")),
            (vec!["datacenters"], Some("/datacenters")),
            (vec!["server_types", "1"], Some("/server_types/{id}")),
            (vec!["volumes", "12", "actions", "explode"], None),
            (vec!["floating_ips"], None),
        ];
        for (segments, want) in cases {
            assert_eq!(
                Route::of(&segments).map(Route::template),
                want,
                "{segments:?}"
            );
        }
    }

    #[test]
    fn every_template_parses_back_to_its_route() {
        let all = [
            Route::Actions,
            Route::Action,
            Route::Datacenters,
            Route::Datacenter,
            Route::Locations,
            Route::Location,
            Route::Networks,
            Route::Network,
            Route::ServerTypes,
            Route::ServerType,
            Route::Servers,
            Route::Server,
            Route::Volumes,
            Route::Volume,
            Route::VolumesActions,
            Route::VolumesAction,
            Route::VolumeActions,
            Route::VolumeAction,
            Route::Attach,
            Route::Detach,
            Route::Resize,
            Route::ChangeProtection,
        ];
        for route in all {
            let path = route
                .template()
                .replace("{id}", "3")
                .replace("{action_id}", "4");
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            assert_eq!(Route::of(&segments), Some(route), "{path}");
        }
    }
}
