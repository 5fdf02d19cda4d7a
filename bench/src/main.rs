//! `chaos-bench`: whole-system benchmarks (work in progress).
fn main() {}
