//! The pure core of the module: (options, observed state) → the ordered
//! steps, the volume as it is and as it will be, and warnings. Anything the
//! module must refuse is refused here, before a single request changes
//! anything.
//!
//! Step order: for `absent`, unprotect, detach, delete; otherwise create or
//! update (rename, labels), resize, detach, attach, protection.

use serde::Serialize;

use crate::hcloud::types::{CreateVolumeRequest, Labels, Volume};

use super::desired::{Desired, Expect, ExpectServer, State};
use super::failure::{Code, Refusal};
pub use super::view::VolumeView;

/// A server, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerRef {
    pub id: i64,
    pub name: String,
}

/// The server a task names, resolved through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetServer {
    pub server: ServerRef,
    pub location: String,
}

/// What the module read before planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub volume: Option<Volume>,
    /// The server the volume is attached to, when it is.
    pub attached_to: Option<ServerRef>,
    /// The `server` option, resolved.
    pub target: Option<TargetServer>,
}

/// One change, in the order it must happen. Each step carries everything
/// the API call needs, so applying a plan never reads the options again.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Create {
        request: CreateVolumeRequest,
    },
    Update {
        name: Option<String>,
        labels: Option<Labels>,
    },
    Resize {
        size: u32,
    },
    Detach {
        from: ServerRef,
    },
    Attach {
        to: ServerRef,
        automount: bool,
    },
    Protect {
        delete: bool,
    },
    /// `recheck`: the reviewed state, read again right before the delete
    /// when other steps (a detach) came first.
    Delete {
        recheck: Option<Expect>,
    },
}

/// A planned step and its description in words.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub step: Step,
    pub text: String,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    pub before: Option<VolumeView>,
    pub after: Option<VolumeView>,
    pub warnings: Vec<String>,
}

fn server_matches(spec: &str, s: &ServerRef) -> bool {
    spec == s.name || spec == s.id.to_string()
}

/// Plans the steps. An `Err` is a refusal: nothing was changed.
///
/// # Errors
/// What must be refused before any change (shrink, another location, a move without `move`, a stale or protected volume).
pub fn plan(p: &Desired, obs: &Observed) -> Result<Plan, Refusal> {
    let before = obs
        .volume
        .as_ref()
        .map(|v| VolumeView::of(v, obs.attached_to.as_ref().map(|s| s.name.clone())));
    let mut planner = Planner {
        view: before.clone(),
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    match (p.state, &before) {
        (State::Present, None) => planner.create(p, obs)?,
        (State::Present, Some(v)) => {
            check_location(p, obs, v)?;
            planner.converge(p, obs)?;
        }
        (State::Detached | State::Absent, None) => {}
        (State::Detached, Some(v)) => {
            check_expect(p, v)?;
            planner.converge(p, obs)?;
        }
        (State::Absent, Some(v)) => {
            check_expect(p, v)?;
            planner.delete(p)?;
        }
    }
    Ok(Plan {
        steps: planner.steps,
        before,
        after: planner.view,
        warnings: planner.warnings,
    })
}

fn check_location(p: &Desired, obs: &Observed, v: &VolumeView) -> Result<(), Refusal> {
    if let Some(loc) = &p.location {
        if *loc != v.location {
            return refuse(Code::Refused, format!(
                "volume {} is in {}, not {loc}; volumes cannot move between locations. Nothing was changed.",
                v.label(),
                v.location
            ));
        }
    }
    if let Some(t) = &obs.target {
        if t.location != v.location {
            return refuse(Code::Refused, format!(
                "volume {} is in {} but server {} is in {}; a volume can only be attached to servers in its location. Nothing was changed.",
                v.label(),
                v.location,
                t.server.name,
                t.location
            ));
        }
    }
    Ok(())
}

fn refuse<T>(code: Code, msg: String) -> Result<T, Refusal> {
    Err(Refusal::new(code, msg))
}

/// How a volume differs from what the reviewed plan says it is (empty: it
/// matches). "Attached to the reviewed server" also accepts "now attached to
/// no server": a run killed after its detach leaves that, and the rerun
/// finishes the job. Attached to any other server is a difference.
pub fn differences(e: &Expect, v: &VolumeView) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(id) = e.id.filter(|id| v.id != Some(*id)) {
        out.push(format!(
            "id {id} expected, found {}",
            v.id.unwrap_or_default()
        ));
    }
    if let Some(name) = e.name.as_ref().filter(|n| **n != v.name) {
        out.push(format!("name {name} expected, found {}", v.name));
    }
    if let Some(size) = e.size.filter(|s| *s != v.size) {
        out.push(format!("size {size} GB expected, found {} GB", v.size));
    }
    if let Some(loc) = e.location.as_ref().filter(|l| **l != v.location) {
        out.push(format!("location {loc} expected, found {}", v.location));
    }
    if let Some(labels) = e.labels.as_ref().filter(|l| **l != v.labels) {
        let show = |l: &Labels| {
            let pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        };
        out.push(format!(
            "labels {} expected, found {}",
            show(labels),
            show(&v.labels)
        ));
    }
    let current = v.server.map(|id| ServerRef {
        id,
        name: v.server_name.clone().unwrap_or_else(|| id.to_string()),
    });
    match (&e.server, &current) {
        (ExpectServer::Unattached, Some(s)) => out.push(format!(
            "attached to no server expected, found attached to {}",
            s.name
        )),
        (ExpectServer::Attached(spec), Some(s)) if !server_matches(spec, s) => out.push(format!(
            "attached to {spec} expected, found attached to {}",
            s.name
        )),
        _ => {}
    }
    out
}

/// The refusal for a volume that no longer matches the reviewed plan.
pub fn stale(v: &VolumeView, differences: &[String]) -> Refusal {
    Refusal::new(
        Code::StalePlan,
        format!(
            "the plan is stale for volume {}: {}. It was left alone; run PH3-01 again to refresh the diff and review it before running PH3-02.",
            v.label(),
            differences.join("; ")
        ),
    )
}

/// Refuses to act on a volume that no longer matches the reviewed plan.
fn check_expect(p: &Desired, v: &VolumeView) -> Result<(), Refusal> {
    let Some(e) = &p.expect else { return Ok(()) };
    let found = differences(e, v);
    if found.is_empty() {
        Ok(())
    } else {
        Err(stale(v, &found))
    }
}

struct Planner {
    view: Option<VolumeView>,
    steps: Vec<PlannedStep>,
    warnings: Vec<String>,
}

impl Planner {
    fn push(&mut self, step: Step, text: String) {
        self.steps.push(PlannedStep { step, text });
    }

    fn view(&mut self) -> &mut VolumeView {
        self.view
            .as_mut()
            .expect("the planner only changes a volume that exists or is being created")
    }

    fn create(&mut self, p: &Desired, obs: &Observed) -> Result<(), Refusal> {
        let Some(name) = p.name.clone() else {
            return refuse(Code::NotFound, format!(
                "volume {} not found; to create a volume give its name (and size, and server or location)",
                p.id.unwrap_or_default()
            ));
        };
        let Some(size) = p.size else {
            return refuse(
                Code::InvalidArgument,
                format!("volume {name} does not exist; size is required to create it"),
            );
        };
        let location = match (&obs.target, &p.location) {
            (Some(t), Some(l)) if t.location != *l => {
                return refuse(
                    Code::InvalidArgument,
                    format!(
                        "server {} is in {}, but location says {l}; drop location or fix it",
                        t.server.name, t.location
                    ),
                )
            }
            (Some(t), _) => t.location.clone(),
            (None, Some(l)) => l.clone(),
            (None, None) => {
                return refuse(
                    Code::InvalidArgument,
                    format!("volume {name} does not exist; give server or location to create it"),
                )
            }
        };
        let server = obs.target.as_ref().map(|t| t.server.clone());
        let mut text = format!("create {name} ({size} GB) in {location}");
        if let Some(s) = &server {
            text.push_str(&format!(", attached to {}", s.name));
        }
        self.view = Some(VolumeView {
            id: None,
            name: name.clone(),
            size,
            location: location.clone(),
            server: server.as_ref().map(|s| s.id),
            server_name: server.as_ref().map(|s| s.name.clone()),
            linux_device: None,
            labels: p.labels.clone().unwrap_or_default(),
            status: "available".into(),
            format: p.format.map(|f| f.as_str().to_string()),
            delete_protection: false,
            created: None,
        });
        let request = CreateVolumeRequest {
            name: name.clone(),
            size,
            server: server.as_ref().map(|s| s.id),
            location: server.is_none().then(|| location.clone()),
            labels: p.labels.clone(),
            automount: server.as_ref().map(|_| p.automount),
            format: p.format.map(|f| f.as_str().to_string()),
        };
        self.push(Step::Create { request }, text);
        if p.delete_protection == Some(true) {
            self.protect(true);
        }
        Ok(())
    }

    /// Brings an existing volume to the options: name, labels, size, attachment, protection.
    fn converge(&mut self, p: &Desired, obs: &Observed) -> Result<(), Refusal> {
        let v = self.view().clone();
        let rename = p.name.clone().filter(|n| *n != v.name);
        let relabel = p.labels.clone().filter(|l| *l != v.labels);
        if rename.is_some() || relabel.is_some() {
            let mut parts = Vec::new();
            if let Some(n) = &rename {
                parts.push(format!("rename {} to {n}", v.label()));
                self.view().name = n.clone();
            }
            if let Some(l) = &relabel {
                let shown: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.push(format!(
                    "set labels of {} to {{{}}}",
                    self.view().label(),
                    shown.join(", ")
                ));
                self.view().labels = l.clone();
            }
            self.push(
                Step::Update {
                    name: rename,
                    labels: relabel,
                },
                parts.join("; "),
            );
        }
        if let Some(size) = p.size {
            if size < v.size {
                return refuse(Code::Refused, format!(
                    "cannot shrink volume {} from {} GB to {size} GB: Hetzner volumes only grow. Set size to {} or more. Nothing was changed.",
                    v.label(),
                    v.size,
                    v.size
                ));
            }
            if size > v.size {
                self.view().size = size;
                let text = format!(
                    "resize {} from {} GB to {size} GB",
                    self.view().label(),
                    v.size
                );
                self.push(Step::Resize { size }, text);
            }
        }
        if let Some(f) = p.format {
            if v.format.as_deref() != Some(f.as_str()) {
                let had = v
                    .format
                    .as_deref()
                    .map_or("without a filesystem".to_string(), |f| format!("with {f}"));
                self.warnings.push(format!(
                    "volume {} was created {had}; format {} applies only when creating a volume, so nothing was changed",
                    v.label(),
                    f.as_str()
                ));
            }
        }
        match p.state {
            State::Present => self.attach(p, obs, &v)?,
            State::Detached => self.detach(),
            State::Absent => unreachable!("absent volumes are deleted, not converged"),
        }
        if let Some(delete) = p.delete_protection {
            if delete != v.delete_protection {
                self.protect(delete);
            }
        }
        Ok(())
    }

    fn attach(&mut self, p: &Desired, obs: &Observed, v: &VolumeView) -> Result<(), Refusal> {
        let Some(target) = &obs.target else {
            return Ok(());
        };
        match (&obs.attached_to, v.server) {
            (Some(current), _) if current.id == target.server.id => Ok(()),
            (Some(current), _) if !p.move_volume => refuse(Code::Refused, format!(
                "volume {} is attached to {}, not {}; set move: true to detach it and attach it to {}. Nothing was changed.",
                v.label(),
                current.name,
                target.server.name,
                target.server.name
            )),
            (_, Some(_)) | (Some(_), None) => {
                self.detach();
                self.attach_to(&target.server, p.automount);
                Ok(())
            }
            (None, None) => {
                self.attach_to(&target.server, p.automount);
                Ok(())
            }
        }
    }

    fn attach_to(&mut self, to: &ServerRef, automount: bool) {
        let text = format!("attach {} to {}", self.view().label(), to.name);
        let view = self.view();
        view.server = Some(to.id);
        view.server_name = Some(to.name.clone());
        self.push(
            Step::Attach {
                to: to.clone(),
                automount,
            },
            text,
        );
    }

    fn detach(&mut self) {
        let v = self.view().clone();
        let Some(id) = v.server else { return };
        let from = ServerRef {
            id,
            name: v.server_name.clone().unwrap_or_else(|| id.to_string()),
        };
        let view = self.view();
        view.server = None;
        view.server_name = None;
        self.push(
            Step::Detach { from: from.clone() },
            format!("detach {} from {}", v.label(), from.name),
        );
    }

    fn protect(&mut self, delete: bool) {
        let what = if delete { "enable" } else { "disable" };
        let text = format!("{what} delete protection of {}", self.view().label());
        self.view().delete_protection = delete;
        self.push(Step::Protect { delete }, text);
    }

    fn delete(&mut self, p: &Desired) -> Result<(), Refusal> {
        let v = self.view().clone();
        if v.delete_protection {
            if p.delete_protection != Some(false) {
                return refuse(Code::Protected, format!(
                    "volume {} is delete-protected, so it was not deleted (nor detached). Nothing was changed. \
                     To delete it, add delete_protection: false to this task.",
                    v.label()
                ));
            }
            self.protect(false);
        }
        self.detach();
        let recheck = p.expect.clone().filter(|_| !self.steps.is_empty());
        self.push(Step::Delete { recheck }, format!("delete {}", v.label()));
        self.view = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcloud::types::{Location, Protection};
    use crate::modules::volume::params::parse;
    use serde_json::{json, Value};

    fn params(v: Value) -> Desired {
        parse(&v).unwrap().desired
    }

    fn volume(server: Option<i64>, protected: bool) -> Volume {
        Volume {
            id: 7,
            created: "2026-01-01T00:00:00Z".into(),
            name: "vol-a".into(),
            server,
            location: Location {
                id: 2,
                name: "nbg1".into(),
                description: String::new(),
                country: "DE".into(),
                city: String::new(),
                latitude: 0.0,
                longitude: 0.0,
                network_zone: "eu-central".into(),
            },
            size: 20,
            linux_device: "/dev/disk/by-id/scsi-0HC_Volume_7".into(),
            protection: Protection { delete: protected },
            labels: Labels::new(),
            status: "available".into(),
            format: Some("ext4".into()),
        }
    }

    fn server(id: i64, name: &str) -> ServerRef {
        ServerRef {
            id,
            name: name.into(),
        }
    }

    fn target(id: i64, name: &str, location: &str) -> Option<TargetServer> {
        Some(TargetServer {
            server: server(id, name),
            location: location.into(),
        })
    }

    fn observed(
        v: Option<Volume>,
        attached_to: Option<ServerRef>,
        t: Option<TargetServer>,
    ) -> Observed {
        Observed {
            volume: v,
            attached_to,
            target: t,
        }
    }

    fn texts(p: &Plan) -> Vec<&str> {
        p.steps.iter().map(|s| s.text.as_str()).collect()
    }

    /// (case, options, observed, expected step texts)
    #[test]
    fn plan_table() {
        let a = || Some(server(1, "a"));
        let cases: Vec<(&str, Value, Observed, Vec<&str>)> = vec![
            (
                "create with server",
                json!({"name": "vol-a", "size": 20, "server": "a"}),
                observed(None, None, target(1, "a", "nbg1")),
                vec!["create vol-a (20 GB) in nbg1, attached to a"],
            ),
            (
                "create protected",
                json!({"name": "vol-a", "size": 20, "location": "hel1", "delete_protection": true}),
                observed(None, None, None),
                vec![
                    "create vol-a (20 GB) in hel1",
                    "enable delete protection of vol-a",
                ],
            ),
            (
                "no-op",
                json!({"name": "vol-a", "size": 20, "server": "a"}),
                observed(Some(volume(Some(1), false)), a(), target(1, "a", "nbg1")),
                vec![],
            ),
            (
                "grow and label",
                json!({"name": "vol-a", "size": 30, "labels": {"k": "v"}}),
                observed(Some(volume(None, false)), None, None),
                vec![
                    "set labels of vol-a (7) to {k=v}",
                    "resize vol-a (7) from 20 GB to 30 GB",
                ],
            ),
            (
                "attach",
                json!({"name": "vol-a", "server": "a"}),
                observed(Some(volume(None, false)), None, target(1, "a", "nbg1")),
                vec!["attach vol-a (7) to a"],
            ),
            (
                "move",
                json!({"name": "vol-a", "server": "b", "move": true}),
                observed(Some(volume(Some(1), false)), a(), target(2, "b", "nbg1")),
                vec!["detach vol-a (7) from a", "attach vol-a (7) to b"],
            ),
            (
                "protect",
                json!({"name": "vol-a", "delete_protection": true}),
                observed(Some(volume(None, false)), None, None),
                vec!["enable delete protection of vol-a (7)"],
            ),
            (
                "detached",
                json!({"name": "vol-a", "state": "detached"}),
                observed(Some(volume(Some(1), false)), a(), None),
                vec!["detach vol-a (7) from a"],
            ),
            (
                "detached already",
                json!({"name": "vol-a", "state": "detached"}),
                observed(Some(volume(None, false)), None, None),
                vec![],
            ),
            (
                "absent attached",
                json!({"name": "vol-a", "state": "absent"}),
                observed(Some(volume(Some(1), false)), a(), None),
                vec!["detach vol-a (7) from a", "delete vol-a (7)"],
            ),
            (
                "absent protected, unprotect asked",
                json!({"name": "vol-a", "state": "absent", "delete_protection": false}),
                observed(Some(volume(Some(1), true)), a(), None),
                vec![
                    "disable delete protection of vol-a (7)",
                    "detach vol-a (7) from a",
                    "delete vol-a (7)",
                ],
            ),
            (
                "absent missing",
                json!({"name": "vol-a", "state": "absent"}),
                observed(None, None, None),
                vec![],
            ),
            (
                "absent, plan matches",
                json!({"name": "vol-a", "state": "absent", "expect": {"id": 7, "server": "a", "size": 20}}),
                observed(Some(volume(Some(1), false)), a(), None),
                vec!["detach vol-a (7) from a", "delete vol-a (7)"],
            ),
        ];
        for (case, args, obs, want) in cases {
            let plan = plan(&params(args), &obs).unwrap_or_else(|e| panic!("{case}: {}", e.msg));
            assert_eq!(texts(&plan), want, "{case}");
        }
    }

    /// (case, options, observed, code and start of the refusal)
    #[test]
    fn refusals_happen_before_any_step() {
        let a = || Some(server(1, "a"));
        let unattached = || observed(Some(volume(None, false)), None, None);
        let cases: Vec<(&str, Value, Observed, Code, &str)> = vec![
            ("shrink", json!({"name": "vol-a", "size": 10}), unattached(), Code::Refused,
             "cannot shrink volume vol-a (7) from 20 GB to 10 GB: Hetzner volumes only grow. Set size to 20 or more."),
            ("move refused", json!({"name": "vol-a", "server": "b"}), observed(Some(volume(Some(1), false)), a(), target(2, "b", "nbg1")),
             Code::Refused, "volume vol-a (7) is attached to a, not b; set move: true"),
            ("other location", json!({"name": "vol-a", "server": "c"}), observed(Some(volume(None, false)), None, target(3, "c", "hel1")),
             Code::Refused, "volume vol-a (7) is in nbg1 but server c is in hel1"),
            ("location drift", json!({"name": "vol-a", "location": "hel1"}), unattached(), Code::Refused,
             "volume vol-a (7) is in nbg1, not hel1; volumes cannot move"),
            ("protected", json!({"name": "vol-a", "state": "absent"}), observed(Some(volume(Some(1), true)), a(), None), Code::Protected,
             "volume vol-a (7) is delete-protected, so it was not deleted (nor detached). Nothing was changed."),
            ("stale server", json!({"name": "vol-a", "state": "absent", "expect": {"id": 7, "server": "b"}}),
             observed(Some(volume(Some(1), false)), a(), None), Code::StalePlan,
             "the plan is stale for volume vol-a (7): attached to b expected, found attached to a."),
            ("stale id and size", json!({"name": "vol-a", "state": "detached", "expect": {"id": 8, "size": 30}}),
             unattached(), Code::StalePlan,
             "the plan is stale for volume vol-a (7): id 8 expected, found 7; size 30 GB expected, found 20 GB."),
            ("attached since the review", json!({"name": "vol-a", "state": "absent", "expect": {"id": 7, "server": null}}),
             observed(Some(volume(Some(1), false)), a(), None), Code::StalePlan,
             "the plan is stale for volume vol-a (7): attached to no server expected, found attached to a."),
            ("renamed and moved to another location", json!({"name": "vol-a", "state": "absent", "expect": {"name": "vol-b", "location": "hel1"}}),
             unattached(), Code::StalePlan,
             "the plan is stale for volume vol-a (7): name vol-b expected, found vol-a; location hel1 expected, found nbg1."),
            ("create without size", json!({"name": "vol-a", "server": "a"}), observed(None, None, target(1, "a", "nbg1")),
             Code::InvalidArgument, "volume vol-a does not exist; size is required to create it"),
            ("create nowhere", json!({"name": "vol-a", "size": 10}), observed(None, None, None), Code::InvalidArgument,
             "volume vol-a does not exist; give server or location to create it"),
        ];
        for (case, args, obs, code, want) in cases {
            let err = plan(&params(args), &obs).unwrap_err();
            assert!(
                err.msg.starts_with(want),
                "{case}:\n got  {}\n want {want}",
                err.msg
            );
            assert_eq!(err.code, code, "{case}");
        }
    }

    #[test]
    fn a_deletion_resumes_after_its_detach() {
        // A run killed after the detach leaves the volume unattached: the rerun deletes it.
        let args = json!({"name": "vol-a", "state": "absent",
                          "expect": {"id": 7, "name": "vol-a", "size": 20, "location": "nbg1", "server": "a"}});
        let resumed = plan(
            &params(args),
            &observed(Some(volume(None, false)), None, None),
        )
        .unwrap();
        assert_eq!(texts(&resumed), vec!["delete vol-a (7)"]);
        // An unattached orphan reviewed as unattached is deleted too (positive control).
        let orphan = json!({"id": 7, "state": "absent", "expect": {"id": 7, "server": null}});
        let planned = plan(
            &params(orphan),
            &observed(Some(volume(None, false)), None, None),
        )
        .unwrap();
        assert_eq!(texts(&planned), vec!["delete vol-a (7)"]);
    }

    #[test]
    fn predicted_volume_and_format_warning() {
        let obs = observed(
            Some(volume(Some(1), false)),
            Some(server(1, "a")),
            target(2, "b", "nbg1"),
        );
        let plan = plan(
            &params(
                json!({"name": "vol-a", "server": "b", "move": true, "size": 40, "format": "xfs"}),
            ),
            &obs,
        )
        .unwrap();
        let after = plan.after.unwrap();
        assert_eq!(
            (after.server, after.server_name.as_deref(), after.size),
            (Some(2), Some("b"), 40)
        );
        assert_eq!(plan.before.unwrap().server_name.as_deref(), Some("a"));
        assert!(plan.warnings[0]
            .contains("was created with ext4; format xfs applies only when creating"));
    }
}
