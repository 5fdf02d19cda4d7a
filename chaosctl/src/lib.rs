//! The library half of `chaosctl`: the REST client, output formatting, the local stack
//! (`chaosctl up`, also used by `chaos-bench` and the end-to-end tests) and the analysis of a
//! scenario's journal (runs of an instance on workers).

pub mod client;
pub mod output;
pub mod runs;
pub mod stack;
