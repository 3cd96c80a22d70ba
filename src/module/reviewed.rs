//! Binds a deletion to the reviewed PH3-01 diff (`diff_file`): the file's
//! confirmation code must be the one the run was confirmed with (`confirm`,
//! not needed in check mode), the diff must list the volume, and the guard
//! (`expect`) is the diff's own entry. All of it is decided before the first
//! request.

use crate::fleet::reviewed;

use super::failure::{Code, Refusal};
use super::params::{Expect, ExpectServer, Params};

/// The options with `expect` taken from the diff, when `diff_file` is given.
pub fn bind(p: &Params, check_mode: bool) -> Result<Params, Refusal> {
    let Some(path) = &p.diff_file else {
        return Ok(p.clone());
    };
    let id = p.id.unwrap_or_default();
    let r = reviewed::load(path.as_ref()).map_err(|e| Refusal::new(Code::InvalidArgument, e))?;
    if !check_mode && p.confirm.as_deref() != Some(r.code.as_str()) {
        let given = p
            .confirm
            .as_deref()
            .filter(|c| !c.is_empty())
            .map_or("no confirmation".to_string(), |c| {
                format!("the confirmation '{c}'")
            });
        return Err(Refusal::new(
            Code::Unconfirmed,
            format!(
                "volume {id} is listed for deletion by {} (confirmation code {}), but this run has {given}. \
                 Nothing was changed. Review the diff, then confirm it with its code (kbv3_confirm_destroy={}).",
                r.path.display(),
                r.code,
                r.code
            ),
        ));
    }
    let Some(entry) = r.diff.volumes_to_delete.iter().find(|v| v.id == id) else {
        return Err(Refusal::new(
            Code::NotInDiff,
            format!(
                "volume {id} is not in volumes_to_delete of {}; only volumes the reviewed diff lists are deleted. Nothing was changed.",
                r.path.display()
            ),
        ));
    };
    let reviewed = Expect {
        id: Some(entry.id),
        name: Some(entry.name.clone()),
        size: Some(i64::from(entry.size_gb)),
        location: Some(entry.location.clone()),
        server: entry
            .server_name
            .clone()
            .map_or(ExpectServer::Unattached, ExpectServer::Attached),
    };
    if p.expect.as_ref().is_some_and(|e| *e != reviewed) {
        return Err(Refusal::new(
            Code::InvalidArgument,
            format!(
                "argument 'expect' disagrees with the entry of volume {id} in {}; drop expect or pass the diff's values",
                r.path.display()
            ),
        ));
    }
    Ok(Params {
        expect: Some(reviewed),
        ..p.clone()
    })
}
