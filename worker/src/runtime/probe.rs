//! Where a plugin's probe samples go (`chaos:plugin/probe`): the runtime hands each sample, with
//! the probe it belongs to, to a [`ProbeSink`] — the worker's availability accounting
//! (`crate::availability`), or a test's recorder. The sink must be quick: it is called on the
//! plugin's own turn.

use chaos_availability::ProbeState;
use chaos_def::probe::ProbeBinding;

/// The probe an instance samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTag {
    pub binding: ProbeBinding,
    /// The scenario and instance sampling it.
    pub scenario: String,
    pub instance: String,
}

/// Takes samples; `at_ms` is when the sample was taken (wall clock, Unix milliseconds).
pub trait ProbeSink: Send + Sync {
    fn sample(&self, tag: &ProbeTag, state: ProbeState, detail: &str, at_ms: i64);
    /// The instance's run ended on this worker (its live state goes).
    fn ended(&self, tag: &ProbeTag);
}

/// The longest detail kept with a sample.
pub const MAX_DETAIL: usize = 256;

/// `detail` cut to [`MAX_DETAIL`] bytes on a character boundary.
pub fn cut_detail(detail: &str) -> &str {
    if detail.len() <= MAX_DETAIL {
        return detail;
    }
    let mut end = MAX_DETAIL;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    &detail[..end]
}
