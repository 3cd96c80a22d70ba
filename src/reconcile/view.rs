//! A volume as results show it (`volume`, `diff`), before and after a plan.

use serde::Serialize;
use serde_json::{json, Value};

use crate::hcloud::types::{Labels, Volume};

/// The user-visible state of a volume, as returned in `volume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeView {
    pub id: Option<i64>,
    pub name: String,
    pub size: u32,
    pub location: String,
    /// Id of the server it is attached to.
    pub server: Option<i64>,
    pub server_name: Option<String>,
    pub linux_device: Option<String>,
    pub labels: Labels,
    pub status: String,
    pub format: Option<String>,
    pub delete_protection: bool,
    pub created: Option<String>,
}

impl VolumeView {
    /// The view of an observed volume.
    pub fn of(v: &Volume, server_name: Option<String>) -> Self {
        VolumeView {
            id: Some(v.id),
            name: v.name.clone(),
            size: v.size,
            location: v.location.name.clone(),
            server: v.server,
            server_name,
            linux_device: Some(v.linux_device.clone()),
            labels: v.labels.clone(),
            status: v.status.clone(),
            format: v.format.clone(),
            delete_protection: v.protection.delete,
            created: Some(v.created.clone()),
        }
    }

    /// `name (id)`, or just the name before it exists.
    pub fn label(&self) -> String {
        match self.id {
            Some(id) => format!("{} ({id})", self.name),
            None => self.name.clone(),
        }
    }

    /// The attributes a diff shows.
    pub fn diff_view(&self) -> Value {
        json!({
            "name": self.name,
            "size": self.size,
            "location": self.location,
            "server": self.server_name,
            "labels": self.labels,
            "delete_protection": self.delete_protection,
            "format": self.format,
        })
    }
}

/// Ansible's `diff` of one volume: the attributes it shows, before and after.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeDiff {
    pub before: Value,
    pub after: Value,
    pub before_header: String,
    pub after_header: String,
}

impl VolumeDiff {
    /// The diff between the volume `before` and `after` a plan; `subject`
    /// names it in the headers.
    pub fn of(before: &Option<VolumeView>, after: &Option<VolumeView>, subject: &str) -> Self {
        let view =
            |v: &Option<VolumeView>| v.as_ref().map_or_else(|| json!({}), VolumeView::diff_view);
        VolumeDiff {
            before: view(before),
            after: view(after),
            before_header: format!("volume {subject} (before)"),
            after_header: format!("volume {subject} (after)"),
        }
    }
}
