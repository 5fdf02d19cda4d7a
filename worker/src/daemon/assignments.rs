//! The pure decision of what to do about one instance of this worker.
//!
//! Each instance of this worker is in one of these states, driven by watch events:
//!
//! ```text
//!  (assigned, instance Run, attempt matches, slot free) ──Start──▶ Running
//!  Running ──(assignment gone | instance gone | desired Stop | attempt moved on)──Stop──▶ Stopping
//!  Stopping ──(plugin returned)──▶ final status + assignment deleted (fenced) ──▶ gone
//!  (assigned, but the instance is gone / Stop / on a later attempt, never started) ──Finish──▶ gone
//!  (assigned, a cleanup attempt or placed again: Stop, never started, slot free) ──Start, stopped at once──▶ Stopping
//!  (assigned, the instance record read is of an older attempt) ──Ignore (until the newer one comes)
//!  Running ──(worker draining)──Drain──▶ Stopping ──▶ final status Pending + assignment deleted
//!  (assigned, never started, worker draining) ──Finish(Pending)──▶ gone (placed elsewhere)
//! ```
//!
//! [`decide`] is that table as a function of the cached records; [`super::session`] applies it
//! to every instance a change touches.

use chaos_def::records::{Assignment, DesiredState, InstancePhase};

use super::lean::LeanInstance;

/// What the daemon is doing with one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its plugin runs.
    Running,
    /// It was asked to stop; the plugin cleans up.
    Stopping,
}

/// What to do about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start its plugin.
    Start,
    /// Cancel the run (the plugin cleans up; then the final status is written).
    Stop(String),
    /// Cancel the run to hand the instance back (the worker is drained): once the plugin has
    /// cleaned up, its status goes back to Pending so that it is placed elsewhere.
    Drain,
    /// Never started and never will here: write this final status and delete the assignment.
    Finish(InstancePhase, String),
    /// Nothing to do now.
    Ignore,
}

/// What a Pending status says of an instance handed back by a drain.
pub const DRAINED: &str = chaos_def::consts::DRAINED_REASON;

/// What the worker as a whole is doing, as [`decide`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerState {
    pub slot_free: bool,
    /// An operator drains this worker.
    pub draining: bool,
}

/// The decision for one instance given its assignment, its record, whether it runs here, and
/// the worker's state.
pub fn decide(
    assignment: Option<&Assignment>,
    instance: Option<&LeanInstance>,
    running: Option<RunState>,
    worker: WorkerState,
) -> Decision {
    match (running, assignment) {
        (Some(RunState::Stopping), _) => Decision::Ignore,
        (Some(RunState::Running), None) => Decision::Stop("the assignment was withdrawn".into()),
        (Some(RunState::Running), Some(a)) => match instance {
            None => Decision::Stop("the instance was deleted".into()),
            Some(i) if i.desired == DesiredState::Stop => {
                Decision::Stop(i.stop_reason.as_deref().unwrap_or("stop requested").to_string())
            }
            Some(i) if i.attempt > a.attempt => Decision::Stop(format!("attempt {} superseded", a.attempt)),
            Some(_) if worker.draining => Decision::Drain,
            Some(_) => Decision::Ignore,
        },
        (None, None) => Decision::Ignore,
        (None, Some(a)) => match instance {
            None => Decision::Finish(InstancePhase::Failed, "the instance does not exist".into()),
            // The record read is older than the assignment (the two come by separate watches):
            // wait for the newer one rather than decide on what it no longer says.
            Some(i) if a.attempt > i.attempt => Decision::Ignore,
            Some(i) if i.attempt > a.attempt => {
                Decision::Finish(InstancePhase::Failed, format!("attempt {} superseded before it started", a.attempt))
            }
            // A cleanup attempt starts (already stopped: see `Session::start`), and so does a
            // stopped instance placed again after its worker died (that run's cleanup is due);
            // any other instance asked to stop before it started has nothing to undo.
            Some(i) if i.desired == DesiredState::Stop && !i.cleanup && a.placement <= 1 => {
                Decision::Finish(InstancePhase::Succeeded, "stopped before it started".into())
            }
            Some(_) if worker.draining => Decision::Finish(InstancePhase::Pending, DRAINED.into()),
            Some(_) if worker.slot_free => Decision::Start,
            Some(_) => Decision::Ignore,
        },
    }
}

#[cfg(test)]
mod tests {

    use chaos_def::PluginRef;
    use chaos_def::records::TaskInstance;

    use super::*;

    fn assignment(attempt: u32) -> Assignment {
        Assignment {
            instance: "i".into(),
            scenario: "s".into(),
            attempt,
            placement: 1,
            assigned_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn instance(attempt: u32, desired: DesiredState) -> LeanInstance {
        let full = TaskInstance {
            seed: 1,
            desired,
            attempt,
            ..TaskInstance::new("i", "s", PluginRef::Name("p".into()), jiff::Timestamp::UNIX_EPOCH)
        };
        LeanInstance::from(&full)
    }

    const FREE: WorkerState = WorkerState { slot_free: true, draining: false };
    const FULL: WorkerState = WorkerState { slot_free: false, draining: false };
    const DRAINING: WorkerState = WorkerState { slot_free: true, draining: true };

    #[test]
    fn a_draining_worker_hands_every_instance_back_but_still_honours_stops() {
        let a = assignment(1);
        let run = Some(RunState::Running);
        assert_eq!(decide(Some(&a), Some(&instance(1, DesiredState::Run)), run, DRAINING), Decision::Drain);
        assert_eq!(
            decide(Some(&a), Some(&instance(1, DesiredState::Run)), None, DRAINING),
            Decision::Finish(InstancePhase::Pending, DRAINED.into())
        );
        // A stop asked for meanwhile is a stop, not a hand-over.
        assert!(matches!(decide(Some(&a), Some(&instance(1, DesiredState::Stop)), run, DRAINING), Decision::Stop(_)));
        assert_eq!(
            decide(Some(&a), Some(&instance(1, DesiredState::Stop)), None, DRAINING),
            Decision::Finish(InstancePhase::Succeeded, "stopped before it started".into())
        );
        assert_eq!(
            decide(Some(&a), Some(&instance(1, DesiredState::Run)), Some(RunState::Stopping), DRAINING),
            Decision::Ignore
        );
    }

    #[test]
    fn an_assigned_instance_to_run_starts_when_a_slot_is_free() {
        let (a, i) = (assignment(1), instance(1, DesiredState::Run));
        assert_eq!(decide(Some(&a), Some(&i), None, FREE), Decision::Start);
        assert_eq!(decide(Some(&a), Some(&i), None, FULL), Decision::Ignore);
        assert_eq!(decide(Some(&a), Some(&i), Some(RunState::Running), FREE), Decision::Ignore);
    }

    #[test]
    fn a_running_instance_stops_on_stop_withdrawal_deletion_or_a_new_attempt() {
        let a = assignment(1);
        let run = Some(RunState::Running);
        assert!(matches!(decide(Some(&a), Some(&instance(1, DesiredState::Stop)), run, FREE), Decision::Stop(_)));
        assert!(matches!(decide(None, Some(&instance(1, DesiredState::Run)), run, FREE), Decision::Stop(_)));
        assert!(matches!(decide(Some(&a), None, run, FREE), Decision::Stop(_)));
        assert!(matches!(decide(Some(&a), Some(&instance(2, DesiredState::Run)), run, FREE), Decision::Stop(_)));
        // Already stopping: nothing more to do.
        assert_eq!(decide(None, None, Some(RunState::Stopping), FREE), Decision::Ignore);
    }

    #[test]
    fn a_cleanup_attempt_starts_though_it_is_to_stop() {
        let a = assignment(2);
        let cleanup = LeanInstance { cleanup: true, ..instance(2, DesiredState::Stop) };
        assert_eq!(decide(Some(&a), Some(&cleanup), None, FREE), Decision::Start);
        assert_eq!(decide(Some(&a), Some(&cleanup), None, FULL), Decision::Ignore);
        // Started stopped: the session stops it at once, and nothing more is decided for it.
        assert_eq!(decide(Some(&a), Some(&cleanup), Some(RunState::Stopping), FREE), Decision::Ignore);
        // The record read may be older than the assignment: wait for the newer one.
        assert_eq!(decide(Some(&a), Some(&instance(1, DesiredState::Stop)), None, FREE), Decision::Ignore);
        // A stopped instance placed again after its worker died: that run's cleanup is due.
        let again = Assignment { placement: 2, ..assignment(1) };
        assert_eq!(decide(Some(&again), Some(&instance(1, DesiredState::Stop)), None, FREE), Decision::Start);
    }

    #[test]
    fn an_assignment_that_cannot_run_is_finished_at_once() {
        let a = assignment(1);
        assert_eq!(
            decide(Some(&a), Some(&instance(1, DesiredState::Stop)), None, FREE),
            Decision::Finish(InstancePhase::Succeeded, "stopped before it started".into())
        );
        assert!(matches!(decide(Some(&a), None, None, FREE), Decision::Finish(InstancePhase::Failed, _)));
        assert!(matches!(
            decide(Some(&a), Some(&instance(3, DesiredState::Run)), None, FREE),
            Decision::Finish(InstancePhase::Failed, _)
        ));
        assert_eq!(decide(None, Some(&instance(1, DesiredState::Run)), None, FREE), Decision::Ignore);
    }
}
