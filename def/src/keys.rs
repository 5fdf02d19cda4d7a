//! The etcd key layout (docs/architecture.md): the one place where a key is spelled.
//!
//! One key per item, grouped by prefix, so that a list is a prefix range and every change is
//! one small write a watcher sees as one event. Every function returns a full key under the
//! configured prefix; the `*_prefix` functions end in `/` and are meant for range reads and
//! watches.

/// Key builder for one deployment's prefix (`/chaos` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    root: String,
}

impl Keys {
    /// `prefix` is normalised to start with `/` and not end with one.
    pub fn new(prefix: &str) -> Self {
        let trimmed = prefix.trim_matches('/');
        let root = if trimmed.is_empty() { String::new() } else { format!("/{trimmed}") };
        Keys { root }
    }

    pub fn prefix(&self) -> &str {
        &self.root
    }

    fn under(&self, rest: &str) -> String {
        format!("{}/{rest}", self.root)
    }

    /// Everything this deployment owns.
    pub fn all_prefix(&self) -> String {
        self.under("")
    }

    pub fn scenario(&self, name: &str) -> String {
        self.under(&format!("scenarios/{name}"))
    }
    pub fn scenarios_prefix(&self) -> String {
        self.under("scenarios/")
    }

    pub fn scenario_status(&self, name: &str) -> String {
        self.under(&format!("scenarios-status/{name}"))
    }
    pub fn scenario_statuses_prefix(&self) -> String {
        self.under("scenarios-status/")
    }

    pub fn instance(&self, scenario: &str, instance: &str) -> String {
        self.under(&format!("instances/{scenario}/{instance}"))
    }
    pub fn instances_prefix(&self) -> String {
        self.under("instances/")
    }
    pub fn scenario_instances_prefix(&self, scenario: &str) -> String {
        self.under(&format!("instances/{scenario}/"))
    }

    pub fn worker(&self, name: &str) -> String {
        self.under(&format!("workers/{name}"))
    }
    pub fn workers_prefix(&self) -> String {
        self.under("workers/")
    }

    pub fn assignment(&self, worker: &str, instance: &str) -> String {
        self.under(&format!("assignments/{worker}/{instance}"))
    }
    pub fn assignments_prefix(&self) -> String {
        self.under("assignments/")
    }
    pub fn worker_assignments_prefix(&self, worker: &str) -> String {
        self.under(&format!("assignments/{worker}/"))
    }

    pub fn status(&self, instance: &str) -> String {
        self.under(&format!("status/{instance}"))
    }
    pub fn statuses_prefix(&self) -> String {
        self.under("status/")
    }

    /// Event keys sort by sequence number: the number is zero-padded to 20 digits.
    pub fn event(&self, scenario: &str, seq: u64) -> String {
        self.under(&format!("events/{scenario}/{seq:020}"))
    }
    pub fn scenario_events_prefix(&self, scenario: &str) -> String {
        self.under(&format!("events/{scenario}/"))
    }
    pub fn events_prefix(&self) -> String {
        self.under("events/")
    }

    pub fn plugin(&self, name: &str, version: &str) -> String {
        self.under(&format!("plugins/{name}/{version}"))
    }
    pub fn plugin_versions_prefix(&self, name: &str) -> String {
        self.under(&format!("plugins/{name}/"))
    }
    pub fn plugins_prefix(&self) -> String {
        self.under("plugins/")
    }

    /// Chunks sort by index: zero-padded to 6 digits.
    pub fn blob_chunk(&self, digest: &str, index: u32) -> String {
        self.under(&format!("blobs/{digest}/{index:06}"))
    }
    pub fn blob_prefix(&self, digest: &str) -> String {
        self.under(&format!("blobs/{digest}/"))
    }

    /// The election named `role` (`controller`, `scheduler`).
    pub fn election(&self, role: &str) -> String {
        self.under(&format!("control/election/{role}"))
    }

    /// An operator's cordon on a worker: present means it gets no new instances.
    pub fn cordon(&self, worker: &str) -> String {
        self.under(&format!("control/cordon/{worker}"))
    }
    pub fn cordons_prefix(&self) -> String {
        self.under("control/cordon/")
    }

    /// The global kill switch: present means every scenario stops and new ones are refused.
    pub fn stop_all(&self) -> String {
        self.under("control/stop-all")
    }

    /// An API token's record, under the SHA-256 of its secret.
    pub fn token(&self, hash: &str) -> String {
        self.under(&format!("auth/tokens/{hash}"))
    }
    /// A dashboard session of the token whose hash is `token`: the session id's hash under it,
    /// so that revoking a token ends its sessions with one prefix delete.
    pub fn ui_session(&self, token: &str, session: &str) -> String {
        self.under(&format!("auth/ui-sessions/{token}/{session}"))
    }
    pub fn ui_sessions_of(&self, token: &str) -> String {
        self.under(&format!("auth/ui-sessions/{token}/"))
    }
    pub fn tokens_prefix(&self) -> String {
        self.under("auth/tokens/")
    }

    /// A token's name, holding its hash: makes names unique and finds a token to revoke.
    pub fn token_name(&self, name: &str) -> String {
        self.under(&format!("auth/token-names/{name}"))
    }

    /// A bootstrap token that was revoked, by hash: never installed again.
    pub fn revoked_bootstrap(&self, hash: &str) -> String {
        self.under(&format!("auth/revoked-bootstrap/{hash}"))
    }

    /// One audit record; `id` sorts by time (see the apiserver's audit module).
    pub fn audit(&self, id: &str) -> String {
        self.under(&format!("audit/{id}"))
    }
    pub fn audit_prefix(&self) -> String {
        self.under("audit/")
    }

    /// One vantage point's episodes of one probe for one minute (two 30-second episodes), under
    /// the probe so that a probe's history is one range: `availability/episodes/<group>/<probe>/
    /// <minute, unix seconds, 10 digits>/<vantage>`. Kept one day.
    pub fn availability_episodes(&self, group: &str, probe: &str, minute: i64, vantage: &str) -> String {
        self.under(&format!("availability/episodes/{group}/{probe}/{minute:010}/{vantage}"))
    }
    /// A probe's episode pages; `..._from` keys bound a time range within it.
    pub fn availability_probe_episodes_prefix(&self, group: &str, probe: &str) -> String {
        self.under(&format!("availability/episodes/{group}/{probe}/"))
    }
    pub fn availability_episodes_from(&self, group: &str, probe: &str, minute: i64) -> String {
        self.under(&format!("availability/episodes/{group}/{probe}/{:010}", minute.max(0)))
    }
    pub fn availability_episodes_prefix(&self) -> String {
        self.under("availability/episodes/")
    }

    /// A probe's 5-minute slots of one UTC day (day number since the epoch), compactly encoded;
    /// kept for good.
    pub fn availability_slots(&self, group: &str, probe: &str, day: i64) -> String {
        self.under(&format!("availability/slots/{group}/{probe}/{day:06}"))
    }
    pub fn availability_slots_from(&self, group: &str, probe: &str, day: i64) -> String {
        self.under(&format!("availability/slots/{group}/{probe}/{:06}", day.max(0)))
    }

    /// What one vantage point sees of a probe now (on the worker's lease).
    pub fn availability_live(&self, group: &str, probe: &str, vantage: &str) -> String {
        self.under(&format!("availability/live/{group}/{probe}/{vantage}"))
    }
    pub fn availability_probe_live_prefix(&self, group: &str, probe: &str) -> String {
        self.under(&format!("availability/live/{group}/{probe}/"))
    }
    pub fn availability_live_prefix(&self) -> String {
        self.under("availability/live/")
    }

    /// The index of probes that ever reported: `availability/probes/<group>/<probe>`.
    pub fn availability_probe(&self, group: &str, probe: &str) -> String {
        self.under(&format!("availability/probes/{group}/{probe}"))
    }
    pub fn availability_probes_prefix(&self) -> String {
        self.under("availability/probes/")
    }

    /// Where the slot fold has got to.
    pub fn availability_fold(&self) -> String {
        self.under("availability/fold")
    }

    /// A Downtime: applied by users (`source` `user`) or read from a cluster (`cluster.<name>`).
    pub fn downtime(&self, source: &str, name: &str) -> String {
        self.under(&format!("downtimes/{source}/{name}"))
    }
    pub fn downtimes_prefix(&self) -> String {
        self.under("downtimes/")
    }
    pub fn source_downtimes_prefix(&self, source: &str) -> String {
        self.under(&format!("downtimes/{source}/"))
    }

    /// A `--dry-run`'s question to the workers of a cluster (on a short lease).
    pub fn dry_run_request(&self, id: &str) -> String {
        self.under(&format!("dry-run/requests/{id}"))
    }
    pub fn dry_run_requests_prefix(&self) -> String {
        self.under("dry-run/requests/")
    }
    /// The answer to a `--dry-run` request (the first worker's).
    pub fn dry_run_answer(&self, id: &str) -> String {
        self.under(&format!("dry-run/answers/{id}"))
    }

    /// A cluster some worker has declared (kept: "no worker has ever declared it" is a warning
    /// at apply).
    pub fn cluster_seen(&self, cluster: &str) -> String {
        self.under(&format!("clusters/{cluster}"))
    }
    pub fn clusters_seen_prefix(&self) -> String {
        self.under("clusters/")
    }

    /// The last path segment of `key` below `prefix` (`scenarios/x` → `x`); `None` when the
    /// key is not directly below the prefix.
    pub fn name_in<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(prefix)?;
        (!rest.is_empty() && !rest.contains('/')).then_some(rest)
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(crate::consts::DEFAULT_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_under_a_normalised_prefix() {
        for prefix in ["/chaos", "chaos", "/chaos/", "chaos/"] {
            let keys = Keys::new(prefix);
            assert_eq!(keys.scenario("m"), "/chaos/scenarios/m");
            assert_eq!(keys.scenarios_prefix(), "/chaos/scenarios/");
        }
        let keys = Keys::default();
        assert_eq!(keys.instance("m", "i1"), "/chaos/instances/m/i1");
        assert_eq!(keys.event("m", 42), "/chaos/events/m/00000000000000000042");
        assert_eq!(keys.blob_chunk("ab", 3), "/chaos/blobs/ab/000003");
        assert_eq!(keys.stop_all(), "/chaos/control/stop-all");
        assert_eq!(Keys::new("/").scenario("m"), "/scenarios/m");
    }

    #[test]
    fn scenario_prefix_does_not_cover_status_keys() {
        // `scenarios/` and `scenarios-status/` must not overlap, or a scenario watch would
        // see every status write.
        let keys = Keys::default();
        assert!(!keys.scenario_status("m").starts_with(&keys.scenarios_prefix()));
    }

    #[test]
    fn name_in_takes_the_last_segment_only() {
        let keys = Keys::default();
        assert_eq!(Keys::name_in(&keys.scenarios_prefix(), &keys.scenario("m")), Some("m"));
        assert_eq!(Keys::name_in(&keys.instances_prefix(), &keys.instance("m", "i")), None);
    }
}
