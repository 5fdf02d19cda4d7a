//! The scheduler's view of etcd: one [`WatchCache`] per watched prefix, kept current by the
//! watches and by the scheduler's own assignments (written through at the revision etcd gave
//! them, so that the next pass counts them before their watch event arrives).

use chaos_def::Keys;
use chaos_def::records::{Assignment, Cordon, InstanceStatus, TaskInstance, WorkerRecord};
use chaos_def::store::{KeyShape, Slot, Versioned, WatchCache, WatchEvent};

/// What the watches feed in, one variant per watched prefix.
#[derive(Debug)]
pub enum Change {
    Worker(WatchEvent<WorkerRecord>),
    Cordon(WatchEvent<Cordon>),
    Instance(WatchEvent<TaskInstance>),
    Status(WatchEvent<InstanceStatus>),
    Assignment(WatchEvent<Assignment>),
}

#[derive(Debug)]
pub struct Cache {
    /// Registrations by worker name, each bound to its worker's lease.
    pub workers: WatchCache<WorkerRecord>,
    /// Operators' cordons by worker name: present means cordoned.
    pub cordons: WatchCache<Cordon>,
    /// Grouped by scenario, then by instance id.
    pub instances: WatchCache<TaskInstance>,
    /// By instance id.
    pub statuses: WatchCache<InstanceStatus>,
    /// Grouped by worker, then by instance id: a worker's load is the size of its group.
    pub assignments: WatchCache<Assignment>,
}

impl Cache {
    pub fn new(keys: &Keys) -> Self {
        Cache {
            workers: WatchCache::new(keys.workers_prefix(), KeyShape::Name),
            cordons: WatchCache::new(keys.cordons_prefix(), KeyShape::Name),
            instances: WatchCache::new(keys.instances_prefix(), KeyShape::GroupName),
            statuses: WatchCache::new(keys.statuses_prefix(), KeyShape::Name),
            assignments: WatchCache::new(keys.assignments_prefix(), KeyShape::GroupName),
        }
    }

    /// Applies one watch event.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Worker(event) => self.workers.apply(event),
            Change::Cordon(event) => self.cordons.apply(event),
            Change::Instance(event) => self.instances.apply(event),
            Change::Status(event) => self.statuses.apply(event),
            Change::Assignment(event) => self.assignments.apply(event),
        };
    }

    /// Records an assignment this scheduler created on `worker` at `revision`.
    pub fn wrote_assignment(&mut self, worker: &str, assignment: Assignment, revision: i64) {
        let slot = Slot::new(worker, assignment.instance.clone());
        self.assignments.wrote(slot, assignment, revision);
    }

    /// Records a Pending status this scheduler wrote at `revision`.
    pub fn wrote_status(&mut self, id: &str, status: InstanceStatus, revision: i64) {
        self.statuses.wrote(Slot::named(id), status, revision);
    }

    /// The status of an instance, whatever attempt it describes.
    pub fn status(&self, id: &str) -> Option<&Versioned<InstanceStatus>> {
        self.statuses.get_named(id)
    }

    /// The status of the instance's current attempt (an older attempt's status says nothing).
    pub fn current_status(&self, instance: &TaskInstance) -> Option<&InstanceStatus> {
        self.status(&instance.id).map(|s| &s.value).filter(|s| s.attempt == instance.attempt)
    }
}
