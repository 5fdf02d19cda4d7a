//! How long a call may go on trying: its deadline, and when an etcd election may stretch it.
//!
//! ```text
//! a call's budget:  start ──── call timeout ────▶ deadline
//!                                          └─ a member answered "no leader" (or "leader
//!                                             changed") at some try: the deadline moves once,
//!                                             to start + call timeout + ELECTION_ALLOWANCE
//! a fixed budget:   start ──────────────────────▶ deadline, whatever members answer
//! ```
//!
//! A member without a leader refuses at once (the client asks for a leader on every request),
//! so such answers come in quick succession while the others elect one: 1–2 s usually with
//! etcd's default 1 s election timeout, several seconds on a loaded machine. A call given up
//! meanwhile would fail for nothing a moment before the cluster answers again; etcd allows its
//! own requests 7 s (5 s plus two election timeouts) for the same reason. A lease's check has a
//! fixed budget: past the lease's known life, an answer no longer matters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::StoreError;

/// How much longer than the call timeout a call keeps trying while the members say they are
/// electing a leader.
pub const ELECTION_ALLOWANCE: Duration = Duration::from_secs(5);

/// The time one call has (shared by the tries of the call, hence the atomic).
#[derive(Debug)]
pub(super) struct Budget {
    deadline: Instant,
    /// Where the deadline moves to during an election; `None` for a fixed budget.
    through_election: Option<Instant>,
    electing: AtomicBool,
}

impl Budget {
    /// `timeout` from now, stretched by [`ELECTION_ALLOWANCE`] during an election.
    pub(super) fn call(timeout: Duration) -> Self {
        let deadline = Instant::now() + timeout;
        Budget { deadline, through_election: Some(deadline + ELECTION_ALLOWANCE), electing: AtomicBool::new(false) }
    }

    /// Until `deadline`, whatever the members answer.
    pub(super) fn fixed(deadline: Instant) -> Self {
        Budget { deadline, through_election: None, electing: AtomicBool::new(false) }
    }

    /// When the call must have its answer.
    pub(super) fn deadline(&self) -> Instant {
        match self.through_election {
            Some(stretched) if self.electing.load(Ordering::Relaxed) => stretched,
            _ => self.deadline,
        }
    }

    /// Whether a try after `error`, started `delay` from now, is worth making: another member
    /// may answer, and the try can start before the deadline (which an election moves first).
    pub(super) fn worth_another_try(&self, error: &StoreError, delay: Duration) -> bool {
        if error.during_election() {
            self.electing.store(true, Ordering::Relaxed);
        }
        error.another_member_may_answer() && Instant::now() + delay < self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_leader() -> StoreError {
        StoreError::Etcd(etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader")))
    }

    #[tokio::test(start_paused = true)]
    async fn an_election_stretches_a_calls_budget_once() {
        let budget = Budget::call(Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(budget.deadline(), start + Duration::from_secs(5));
        // A member that does not answer moves nothing.
        assert!(budget.worth_another_try(&StoreError::Timeout(Duration::from_secs(1)), Duration::ZERO));
        assert_eq!(budget.deadline(), start + Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!budget.worth_another_try(&StoreError::Timeout(Duration::from_secs(1)), Duration::ZERO));
        // "No leader": the members are electing one; the call waits for them, once.
        assert!(budget.worth_another_try(&no_leader(), Duration::from_millis(500)));
        assert_eq!(budget.deadline(), start + Duration::from_secs(5) + ELECTION_ALLOWANCE);
        tokio::time::advance(ELECTION_ALLOWANCE).await;
        assert!(!budget.worth_another_try(&no_leader(), Duration::ZERO));
        assert_eq!(budget.deadline(), start + Duration::from_secs(5) + ELECTION_ALLOWANCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_budget_ignores_elections_and_answers_that_will_not_change() {
        let start = Instant::now();
        let budget = Budget::fixed(start + Duration::from_secs(2));
        assert!(budget.worth_another_try(&no_leader(), Duration::from_secs(1)));
        assert!(!budget.worth_another_try(&no_leader(), Duration::from_secs(2)));
        assert_eq!(budget.deadline(), start + Duration::from_secs(2));
        let conflict = StoreError::Conflict { key: "k".into() };
        assert!(!Budget::call(Duration::from_secs(5)).worth_another_try(&conflict, Duration::ZERO));
    }
}
