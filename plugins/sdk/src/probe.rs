//! Availability samples (WIT 0.1.1): what the instance measured of the probe the host bound it
//! to. Each sample counts for the time since the previous one (at most the probe's interval plus
//! its timeout back); the worker turns them into 30-second episodes.

use crate::bindings::chaos::plugin::probe as wit;

pub use wit::State;

/// Whether this instance samples a probe (a probe instance, or a checker whose scenario
/// measures its volumes).
pub fn bound() -> bool {
    wit::bound()
}

/// Records one result with why (cut to 256 bytes by the host).
pub fn sample(state: State, detail: &str) {
    wit::sample(state, detail)
}
