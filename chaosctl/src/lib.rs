//! The library half of `chaosctl`: the REST client, output formatting, the local stack
//! (`chaosctl up`), a stack driven from code ([`fleet`], for `chaos-bench` and the end-to-end
//! tests), the analysis of a scenario's journal (runs of an instance on workers) and the
//! availability charts ([`availability`]).

pub mod availability;
pub mod client;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod output;
pub mod pki;
pub mod plugin;
pub mod replay;
pub mod report;
pub mod runs;
pub mod stack;
