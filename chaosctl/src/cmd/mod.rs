//! What each command does, one module per family: it asks the apiserver (or starts processes),
//! then prints for people (tables, text) or for scripts (`-o json|yaml`). Errors go back to
//! `main`, which prints them and sets the exit code.
//!
//! | module           | commands                                           |
//! |------------------|----------------------------------------------------|
//! | [`apply`]        | `apply`                                            |
//! | [`get`]          | `get` (scenarios, instances, workers, plugins)     |
//! | [`describe`]     | `describe scenario`                                |
//! | [`lifecycle`]    | `stop`, `stop --all`, `resume`, `delete`           |
//! | [`journal`]      | `report`, `events`                                 |
//! | [`availability`] | `availability`                                     |
//! | [`plugin`]       | `plugin new\|push\|list\|describe`                 |
//! | [`worker`]       | `worker cordon\|uncordon\|drain`                   |
//! | [`security`]     | `token create\|list\|revoke`, `audit`              |
//! | [`certs`]        | `certs create`                                     |
//! | [`config`]       | `config get-contexts\|use-context\|set-context\|…` |
//! | [`up`]           | `up`                                               |
//!
//! `demo` and `completion` need no module of their own: the demo is all [`chaosctl::demo`]'s,
//! the completion script is the command line's ([`crate::cli`]).

pub mod apply;
pub mod availability;
pub mod certs;
pub mod config;
pub mod describe;
pub mod get;
pub mod journal;
pub mod lifecycle;
pub mod plugin;
pub mod security;
pub mod up;
pub mod worker;

use chaosctl::output::table;

/// A table under `header`, or "No WHAT found." on standard error when there are no rows (as
/// kubectl does).
fn print_rows(header: &[&str], rows: &[Vec<String>], what: &str) {
    if rows.is_empty() {
        eprintln!("No {what} found.");
    } else {
        print!("{}", table(header, rows));
    }
}
