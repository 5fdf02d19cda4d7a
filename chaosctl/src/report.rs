//! How `chaosctl report` and `chaosctl events` print: the report as a few tables, journal
//! entries as one line each.

use std::fmt::Write as _;

use chaos_def::api::{EventEntry, ProbeAvailability, Report};
use chaos_def::workflow::WorkflowStatus;

use crate::output::table;

/// The report as people read it.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let v = &report.volumes;
    let _ = writeln!(out, "Scenario {} ({})", report.scenario, report.phase);
    let _ = writeln!(
        out,
        "Volumes: {} started, {} done, {} failed, {} alive; {} RVs created",
        v.started, v.done, v.failed, v.alive, report.rvs_created
    );
    let _ = writeln!(out);
    if report.checks.is_empty() {
        let _ = writeln!(out, "No volume checker has reported.");
    } else {
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.volume.clone(),
                    c.rv.clone(),
                    c.io_ready_transitions.to_string(),
                    c.quorum_transitions.to_string(),
                    format!("{:.1}", c.seconds_not_io_ready),
                    format!("{:.1}", c.seconds_not_quorum),
                    if c.is_final { c.verdict.clone() } else { format!("{} (so far)", c.verdict) },
                ]
            })
            .collect();
        let header =
            ["VOLUME", "RV", "IOREADY-TRANSITIONS", "QUORUM-TRANSITIONS", "S-NOT-IOREADY", "S-NOT-QUORUM", "VERDICT"];
        out.push_str(&table(&header, &rows));
    }
    let c = &report.verdicts;
    let _ = writeln!(
        out,
        "Verdicts: Stable {}, Recovered {}, Broken {}, Unknown {}",
        c.stable, c.recovered, c.broken, c.unknown
    );
    let _ = writeln!(out);
    if !report.actions.is_empty() {
        let rows: Vec<Vec<String>> = report
            .actions
            .iter()
            .map(|a| {
                vec![
                    a.plugin.clone(),
                    a.action.clone(),
                    a.count.to_string(),
                    a.failures.to_string(),
                    format!("{}ms", a.p50_ms),
                    format!("{}ms", a.p99_ms),
                ]
            })
            .collect();
        out.push_str(&table(&["PLUGIN", "ACTION", "COUNT", "FAILED", "P50", "P99"], &rows));
        let unseen: Vec<String> =
            report.actions.iter().filter(|a| a.unseen > 0).map(|a| format!("{} {}", a.action, a.unseen)).collect();
        if !unseen.is_empty() {
            // Plugins that sent faster than their journal limit: the table does not count these.
            let _ = writeln!(out, "Actions not seen (over the journal limit, not in the table): {}", unseen.join(", "));
        }
        let _ = writeln!(out);
    }
    if !report.availability.is_empty() {
        out.push_str(&availability_table(&report.availability));
        let _ = writeln!(out);
    }
    if !report.workflows.is_empty() {
        out.push_str(&workflows_table(&report.workflows));
        let _ = writeln!(out);
    }
    if let Some(aborted) = &report.aborted {
        let _ = writeln!(out, "Stopped by a safety stop: {aborted}");
    }
    if report.journal_dropped > 0 {
        let _ = writeln!(out, "Journal entries dropped by plugin limits: {}", report.journal_dropped);
    }
    let faults: Vec<String> = report.faults.iter().map(|(name, n)| format!("{name} {n}")).collect();
    let _ = writeln!(out, "Faults injected: {}", if faults.is_empty() { "none".into() } else { faults.join(", ") });
    if report.restarts.is_empty() {
        let _ = writeln!(out, "Instances restarted: none");
    } else {
        let _ = writeln!(out, "Instances restarted: {}", report.restarts.len());
        for restart in &report.restarts {
            let _ = writeln!(out, "  {} ({} runs): {}", restart.instance, restart.runs, restart.reasons.join("; "));
        }
    }
    out
}

/// The availability of the scenario's probes over its run: one row per probe, its seconds by
/// state as durations (`59m10s`).
fn availability_table(probes: &[ProbeAvailability]) -> String {
    let seconds = |secs: u32| chaos_def::Duration::from_secs(u64::from(secs)).to_string();
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            vec![
                crate::availability::label_of(&p.group, &p.probe),
                crate::availability::percent(p.availability),
                seconds(p.up),
                seconds(p.down),
                seconds(p.muted),
                seconds(p.unknown),
                seconds(p.nodata),
            ]
        })
        .collect();
    table(&["PROBE", "AVAILABILITY", "UP", "DOWN", "MUTED", "UNKNOWN", "NO-DATA"], &rows)
}

/// Each workflow's runs: one row per run (a `repeat`'s runs, then the workflow's own steps),
/// with its verdict, when it started, how long it took, and its times to detect and to recover.
pub fn workflows_table(flows: &[WorkflowStatus]) -> String {
    let ms = |ms: &u64| chaos_def::Duration::from_millis(*ms).to_string();
    let timings = |m: &std::collections::BTreeMap<String, u64>| -> String {
        if m.is_empty() {
            "-".into()
        } else {
            m.iter().map(|(step, v)| format!("{step} {}", ms(v))).collect::<Vec<_>>().join(", ")
        }
    };
    let mut rows = Vec::new();
    for flow in flows {
        for run in &flow.runs {
            let took = match (run.started_at, run.ended_at) {
                (Some(a), Some(b)) => ms(&u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0)),
                _ => "-".into(),
            };
            rows.push(vec![
                flow.name.clone(),
                run.run.clone(),
                if run.passed { "Passed".into() } else { "Failed".into() },
                run.started_at.map_or("-".into(), |t| t.strftime("%H:%M:%S").to_string()),
                took,
                timings(&run.detect_ms),
                timings(&run.recover_ms),
                run.failure.clone().unwrap_or_default(),
            ]);
        }
        if flow.runs.is_empty() {
            rows.push(vec![
                flow.name.clone(),
                "-".into(),
                flow.phase.as_str().to_string(),
                flow.started_at.map_or("-".into(), |t| t.strftime("%H:%M:%S").to_string()),
                "-".into(),
                "-".into(),
                "-".into(),
                flow.failure.clone().unwrap_or_default(),
            ]);
        }
    }
    let mut out = String::new();
    let verdicts: Vec<String> = flows.iter().map(|f| format!("{} {}", f.name, f.phase.as_str())).collect();
    let _ = writeln!(out, "Workflows: {}", verdicts.join(", "));
    out.push_str(&table(
        &["WORKFLOW", "RUN", "VERDICT", "STARTED", "TOOK", "TIME-TO-DETECT", "TIME-TO-RECOVER", "FAILURE"],
        &rows,
    ));
    let hidden: u64 = flows.iter().map(|f| f.runs_total.saturating_sub(f.runs.len() as u64)).sum();
    if hidden > 0 {
        let _ = writeln!(out, "Older runs not kept: {hidden}");
    }
    out
}

/// One journal entry on one line: time, kind, instance, then its fields.
pub fn event_line(entry: &EventEntry) -> String {
    let e = &entry.event;
    let mut line =
        format!("{} {:<20} {}", e.time.strftime("%H:%M:%S%.3f"), e.kind, e.instance.as_deref().unwrap_or("-"));
    for (key, value) in &e.fields {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(line, " {key}={text}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_each_probes_availability_and_time_by_state() {
        let probe = |probe: &str, up, down, nodata, availability| ProbeAvailability {
            group: "synthetic".into(),
            probe: probe.into(),
            up,
            down,
            unknown: 0,
            muted: 120,
            nodata,
            availability,
        };
        let report = Report {
            scenario: "smoke".into(),
            phase: "Stopped".into(),
            availability: vec![probe("http", 3550, 17, 33, Some(0.99531)), probe("dns", 0, 0, 3720, None)],
            ..Default::default()
        };
        let text = render(&report);
        let expected = "\
PROBE            AVAILABILITY   UP       DOWN   MUTED   UNKNOWN   NO-DATA
synthetic/http   99.53%         59m10s   17s    2m      0s        33s
synthetic/dns    -              0s       0s     2m      0s        1h2m
";
        assert!(text.contains(expected), "{text}");
        assert!(!render(&Report::default()).contains("AVAILABILITY"));
    }
}
