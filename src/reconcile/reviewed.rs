//! Binds deletions to the reviewed PH3-01 diff (`diff_file`): the file's
//! confirmation code must be the one the run was confirmed with (`confirm`,
//! not needed in check mode), the diff must list the volume, and the guard
//! (`expect`) is the diff's own entry. All of it is decided before the first
//! request. Shared by `kbv3_volume` (one deletion) and `kbv3_volumes` (many).

use crate::fleet::reviewed::{self, ReviewedDiff};

use super::desired::{Desired, Expect, ExpectServer, Mode};
use super::failure::{Code, Refusal};

/// The deletion `d` guarded by its entry in the diff at `path`, confirmed
/// with `confirm` (not needed in check mode).
///
/// # Errors
/// An unreadable diff, a missing or wrong confirmation, a volume the diff
/// does not list, or an `expect` that disagrees with the diff.
pub fn bind(path: &str, confirm: Option<&str>, mode: Mode, d: Desired) -> Result<Desired, Refusal> {
    let id = d.id.unwrap_or_default();
    let r = load(path)?;
    require_confirmation(
        &r,
        confirm,
        mode,
        &format!("volume {id} is listed for deletion by"),
    )?;
    Ok(Desired {
        expect: Some(reviewed_expect(&r, id, d.expect.as_ref())?),
        ..d
    })
}

/// Reads the diff file; an unusable file is an invalid argument.
///
/// # Errors
/// The file cannot be read or is not a usable diff.
pub fn load(path: &str) -> Result<ReviewedDiff, Refusal> {
    reviewed::load(path.as_ref()).map_err(|e| Refusal::new(Code::InvalidArgument, e))
}

/// Refuses a real run whose `confirm` is not the diff's code. `what` starts
/// the message ("volume 7 is listed for deletion by").
///
/// # Errors
/// `unconfirmed`, naming the code to confirm with.
pub fn require_confirmation(
    r: &ReviewedDiff,
    confirm: Option<&str>,
    mode: Mode,
    what: &str,
) -> Result<(), Refusal> {
    if mode.is_check() || confirm == Some(r.code.as_str()) {
        return Ok(());
    }
    let given = confirm
        .filter(|c| !c.is_empty())
        .map_or("no confirmation".to_string(), |c| {
            format!("the confirmation '{c}'")
        });
    Err(Refusal::new(
        Code::Unconfirmed,
        format!(
            "{what} {} (confirmation code {}), but this run has {given}. \
             Nothing was changed. Review the diff, then confirm it with its code (kbv3_confirm_destroy={}).",
            r.path.display(),
            r.code,
            r.code
        ),
    ))
}

/// The guard of volume `id`: the diff's entry in `volumes_to_delete`. A
/// volume the diff does not list is refused (`not_in_diff`); a `given`
/// expect must agree with the entry.
///
/// # Errors
/// `not_in_diff`, or `invalid_argument` for a disagreeing `expect`.
pub fn reviewed_expect(
    r: &ReviewedDiff,
    id: i64,
    given: Option<&Expect>,
) -> Result<Expect, Refusal> {
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
        size: Some(entry.size_gb),
        location: Some(entry.location.clone()),
        server: entry
            .server_name
            .clone()
            .map_or(ExpectServer::Unattached, ExpectServer::Attached),
        labels: entry.labels.clone(),
    };
    // A given expect without labels leaves them to the diff.
    let agrees = |e: &Expect| {
        let labels = e.labels.clone().or_else(|| reviewed.labels.clone());
        Expect {
            labels,
            ..e.clone()
        } == reviewed
    };
    if given.is_some_and(|e| !agrees(e)) {
        return Err(Refusal::new(
            Code::InvalidArgument,
            format!(
                "argument 'expect' disagrees with the entry of volume {id} in {}; drop expect or pass the diff's values",
                r.path.display()
            ),
        ));
    }
    Ok(reviewed)
}
