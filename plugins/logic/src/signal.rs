//! `process-signal`: which processes, and the record of what it stopped.
//!
//! A `SIGSTOP` is recorded on the pod before it is sent: an annotation
//! `process-signal.chaosctl.dev/<hash of the instance id>` holding the scenario, the instance and
//! the PIDs stopped per container. Whoever ends the fault — the plugin when it is stopped, or a
//! later attempt after its worker died — continues those PIDs and removes the annotation, so
//! nothing stays suspended. Recording first means a crash between the two leaves a record of a
//! stop that may not have happened, never a stop without a record (continuing a running
//! process is harmless).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The annotation prefix of the records.
pub const ANNOTATION_PREFIX: &str = "process-signal.chaosctl.dev/";

/// What one instance stopped in one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspended {
    pub scenario: String,
    pub instance: String,
    /// PIDs by container.
    pub containers: BTreeMap<String, Vec<u32>>,
}

/// The annotation key of `instance`'s record: a name part must be at most 63 characters, and an
/// instance id may be longer, so it is a stable hash (FNV-1a, 64 bits) of the id.
pub fn annotation_key(instance: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in instance.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{ANNOTATION_PREFIX}{hash:016x}")
}

/// The records of `instance` in a pod's annotations (JSON object), if any.
pub fn record_of(annotations: Option<&serde_json::Value>, instance: &str) -> Option<Suspended> {
    let text = annotations?.get(annotation_key(instance))?.as_str()?;
    serde_json::from_str::<Suspended>(text).ok().filter(|r| r.instance == instance)
}

/// The PIDs whose program is `name` in `ps` output (`PID USER TIME STAT COMMAND`): the
/// command's first word, with or without its path.
pub fn pids_named(ps: &str, name: &str) -> Vec<u32> {
    ps.lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let pid = words.next()?.parse().ok()?;
            let program = words.nth(3)?;
            let base = program.rsplit('/').next().unwrap_or(program);
            (program == name || base == name.rsplit('/').next().unwrap_or(name)).then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_found_by_program_name() {
        let ps = "PID   USER     TIME  STAT  COMMAND\n    1 root      0:00 S     /smoke-mini --listen :8080\n   \
                  7 root      0:00 S     /bin/helper -v\n   9 root      0:00 T     helper\n";
        assert_eq!(pids_named(ps, "smoke-mini"), [1]);
        assert_eq!(pids_named(ps, "/smoke-mini"), [1]);
        assert_eq!(pids_named(ps, "helper"), [7, 9]);
        assert!(pids_named(ps, "nginx").is_empty());
    }

    #[test]
    fn records_are_keyed_by_instance_and_checked() {
        let key = annotation_key("eris-0123abcd-w-node-failure-0");
        assert!(key.starts_with(ANNOTATION_PREFIX));
        assert_eq!(key.len() - ANNOTATION_PREFIX.len(), 16, "a short name part");
        assert_ne!(key, annotation_key("eris-0123abcd-w-node-failure-1"));
        let record = Suspended {
            scenario: "eris".into(),
            instance: "eris-0123abcd-w-node-failure-0".into(),
            containers: [("app".to_string(), vec![1])].into(),
        };
        let annotations = serde_json::json!({ key: serde_json::to_string(&record).unwrap() });
        assert_eq!(record_of(Some(&annotations), &record.instance), Some(record.clone()));
        assert_eq!(record_of(Some(&annotations), "other"), None);
        assert_eq!(record_of(None, &record.instance), None);
    }
}
