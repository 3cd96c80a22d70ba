//! The guards around a detach and a delete: a detach that took a volume off
//! a server the plan did not name is undone, a deletion refused after this
//! run's detach puts the volume back, and a volume about to be deleted must
//! still be the one a human reviewed.

use crate::hcloud::types::{ActionStatus, Volume};
use crate::hcloud::{Client, Error};

use crate::reconcile::journal::{Fate, Op};

use super::apply::{settle, touched_server, Ctx, Failure, Pending};
use super::desired::Expect;
use super::failure::{Code, Refusal};
use super::plan::{self, ServerRef, VolumeView};

/// A detach that touched `other`, not the planned server: someone moved the
/// volume after the plan read it. The volume goes back to `other` and the
/// deletion is refused as stale.
pub(super) fn moved_during_the_run(
    ctx: &Ctx,
    id: i64,
    from: &ServerRef,
    other: i64,
    pending: &[Pending],
    done: &[String],
) -> Box<Failure> {
    let other = ctx.server(other);
    let text = format!("detach {} from {}", ctx.volume, from.name);
    let msg = format!(
        "the plan is stale for volume {} ({id}): it was moved to {} during the run (after the run read it on {}), and this run's detach took it off {}",
        ctx.volume, other.name, from.name, other.name
    );
    let mut f = Failure::refused(&text, Refusal::new(Code::StalePlan, msg), done);
    f.done
        .push(format!("detach {} from {}", ctx.volume, other.name));
    if let Err(e) = settle(ctx, pending) {
        f.msg = format!(
            "{}; the detach did not finish ({e}), so it may still be on {}: check it. Refresh and review the PH3-01 diff before running again.",
            f.msg, other.name
        );
        return f;
    }
    undo_detach(ctx, id, &other, f)
}

/// Puts a volume this run took off server `to` back there, after a
/// refusal `f` that no rerun would fix; the message says what was undone.
pub fn undo_detach(ctx: &Ctx, id: i64, to: &ServerRef, mut f: Box<Failure>) -> Box<Failure> {
    let text = format!("re-attach {} to {} (undo)", ctx.volume, to.name);
    let reattached = ctx
        .intent(Op::Attach, Some(id), None, Some(to), true)
        .and_then(|seq| {
            let action = ctx.client.attach_volume(id, to.id, Some(false));
            match action {
                Ok(a) => {
                    ctx.outcome(seq, Fate::Accepted, Some(&a), None, None);
                    settle(ctx, &[Pending { action: a, seq }])
                }
                Err(e) => {
                    ctx.outcome(seq, Fate::Failed, None, None, Some(e.to_string()));
                    Err(e)
                }
            }
        });
    let reason = f.msg.trim_end_matches('.').to_string();
    f.msg = match reattached {
        Ok(()) => {
            f.done.push(text);
            format!(
                "{reason}. This run put it back on {} as it was, and deleted nothing. {}",
                to.name,
                next_step(f.code)
            )
        }
        Err(e) => {
            let now = match attached(ctx.client, id) {
                Ok(Some(s)) if s == to.id => format!("it is on {} now", to.name),
                Ok(Some(s)) => format!(
                    "it is on {} now, not {}: check it",
                    ctx.server(s).name,
                    to.name
                ),
                Ok(None) => format!("it is detached now; attach it to {} by hand", to.name),
                Err(_) => format!(
                    "check where it is, and attach it to {} if it is detached",
                    to.name
                ),
            };
            format!(
                "{reason}. Putting it back on {} failed too ({e}): {now}. {}",
                to.name,
                next_step(f.code)
            )
        }
    };
    f.rerun_finishes = false;
    f
}

/// What to do after a refusal no rerun fixes.
pub fn next_step(code: Code) -> &'static str {
    match code {
        Code::Protected => {
            "It is delete-protected: review why, lift the protection if it must go, then refresh the PH3-01 diff, review it and confirm the new code."
        }
        _ => {
            "Run PH3-01 again to refresh the diff, review it, and run PH3-02 with the new code."
        }
    }
}

/// The server the last finished detach of a volume took it off.
pub(super) fn last_detach(client: &Client, id: i64) -> Result<Option<i64>, Error> {
    let actions = client.actions_of_volume(id)?;
    Ok(actions
        .iter()
        .filter(|a| a.command == "detach_volume" && a.status == ActionStatus::Success)
        .max_by_key(|a| a.id)
        .and_then(touched_server))
}

/// The server a volume is attached to now (fresh read).
pub(super) fn attached(client: &Client, id: i64) -> Result<Option<i64>, Error> {
    client.get_volume(id).map(|v| v.and_then(|v| v.server))
}

/// Checks a fresh read of a volume about to be deleted: it must still be the
/// reviewed one, attached to no server, and unattached for a reason kbv3
/// knows: it was reviewed unattached, or a kbv3 run detached it from its
/// reviewed server (`detached_by_kbv3`). A volume that is gone is fine.
/// Otherwise: `stale_plan`.
///
/// # Errors
/// `stale_plan` naming each difference from what was reviewed, or the read that failed.
pub fn still_as_reviewed(
    expect: &Expect,
    fresh: Option<&Volume>,
    detached_by_kbv3: bool,
) -> Result<(), Refusal> {
    let Some(v) = fresh else {
        return Ok(());
    };
    let mut view = VolumeView::of(v, None);
    let mut found = Vec::new();
    match view.server.take() {
        Some(server) => found.push(format!(
            "attached again (to server {server}) after the detach"
        )),
        None if !detached_by_kbv3 && expect.server.is_attached() => found.push(format!(
            "detached from {} since the review, and not by kbv3 (no kbv3 run has a record of that detach)",
            expect.server
        )),
        None => {}
    }
    found.extend(plan::differences(expect, &view));
    if found.is_empty() {
        return Ok(());
    }
    Err(plan::stale(&view, &found))
}
