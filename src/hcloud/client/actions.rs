//! Waiting for actions: batched polls of the running ones.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Client, Waited};
use crate::hcloud::code::ApiCode;
use crate::hcloud::error::Error;
use crate::hcloud::types::{Action, ActionError, ActionStatus};

/// The API accepts at most this many ids in one `GET /actions?id=…`.
const ACTION_BATCH: usize = 25;

impl Client {
    /// Waits until every action has finished, polling the running ones in
    /// batches of 25 ids. An action that ends in `error` fails the wait with
    /// its code and message; an action the API does not return fails it at
    /// once. When `timeout` (or the client's deadline) runs out, the ids
    /// still running are reported. Returns the finished actions.
    pub fn wait_for(&self, actions: &[Action], timeout: Duration) -> Result<Vec<Action>, Error> {
        let waited = self.wait_all(actions, timeout)?;
        if !waited.running.is_empty() {
            return Err(Error::ActionTimeout {
                running: waited.running,
                waited: waited.waited,
            });
        }
        if let Some(failed) = waited
            .finished
            .iter()
            .find(|a| a.status == ActionStatus::Error)
        {
            return Err(self.action_error(failed));
        }
        Ok(waited.finished)
    }

    /// Waits for many actions at once (batched polls of 25 ids) and reports
    /// each one's end: finished (`success` or `error`) or still running when
    /// `timeout` or the deadline ran out. Only a failed poll is an error.
    pub fn wait_all(&self, actions: &[Action], timeout: Duration) -> Result<Waited, Error> {
        let clock = &self.cfg.clock;
        let started = clock.now();
        let timeout = timeout.min(self.remaining());
        let mut done: BTreeMap<i64, Action> = BTreeMap::new();
        let mut running: Vec<i64> = Vec::new();
        for a in actions {
            if a.is_running() {
                running.push(a.id);
            } else {
                done.insert(a.id, a.clone());
            }
        }
        let mut polls = 0;
        while !running.is_empty() {
            let pause = self
                .cfg
                .poll
                .delay(polls, &mut *self.rng.lock().expect("rng lock"));
            let waited = clock.now().saturating_duration_since(started);
            if waited + pause > timeout {
                return Ok(Waited {
                    finished: done.into_values().collect(),
                    running,
                    waited,
                });
            }
            clock.sleep(pause);
            polls += 1;
            for chunk in running.clone().chunks(ACTION_BATCH) {
                let query = chunk
                    .iter()
                    .map(|id| ("id".to_string(), id.to_string()))
                    .collect();
                let found: Vec<Action> = self.list_all("/actions", "actions", query)?;
                let missing: Vec<i64> = chunk
                    .iter()
                    .filter(|id| !found.iter().any(|a| a.id == **id))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::ActionsNotFound { ids: missing });
                }
                for a in found.into_iter().filter(|a| !a.is_running()) {
                    running.retain(|id| *id != a.id);
                    done.insert(a.id, a);
                }
            }
        }
        Ok(Waited {
            finished: actions
                .iter()
                .filter_map(|a| done.get(&a.id).cloned())
                .collect(),
            running,
            waited: clock.now().saturating_duration_since(started),
        })
    }

    /// The error of an action that ended in `error`.
    pub fn action_error(&self, failed: &Action) -> Error {
        let err = failed.error.clone().unwrap_or(ActionError {
            code: ApiCode::ActionFailed.to_string(),
            message: "action failed".into(),
        });
        Error::ActionFailed {
            action_id: failed.id,
            command: failed.command.clone(),
            code: err.code,
            message: self.redactor.scrub(&err.message),
        }
    }
}
