//! The action log: every action (a step that changes or probes the cluster, such as deleting a
//! pod) is journaled when it starts (name and params) and when it ends (result and duration,
//! measured by the host); `chaosctl report` counts the actions of a scenario with their failures
//! and latencies.

use crate::Error;
use crate::bindings::chaos::plugin::host;

/// Runs `f` as the action `name`: logs its start with `params`, then its end with the result.
pub fn action<T>(name: &str, params: &[(&str, &str)], f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let scope = Action::start(name, params);
    let result = f();
    match &result {
        Ok(_) => scope.ok(""),
        Err(e) => scope.fail(&e.describe()),
    }
    result
}

/// An action in progress. Ending it is explicit (`ok`/`fail`); dropping it unended ends it as
/// failed ("abandoned"), so an early `?` return is still logged.
#[derive(Debug)]
pub struct Action {
    id: u64,
    ended: bool,
}

impl Action {
    pub fn start(name: &str, params: &[(&str, &str)]) -> Action {
        let id = host::action_start(name, &crate::log::owned(params));
        Action { id, ended: false }
    }

    pub fn ok(mut self, detail: &str) {
        self.ended = true;
        host::action_end(self.id, Ok(detail));
    }

    pub fn fail(mut self, message: &str) {
        self.ended = true;
        host::action_end(self.id, Err(message));
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        if !self.ended {
            host::action_end(self.id, Err("abandoned"));
        }
    }
}
