//! What a user sees for a broken scenario file: every error names the field path and the
//! line, and says what is wrong.

use chaos_def::builtin::BuiltinPlugin;
use chaos_def::parse_scenarios;

/// A valid scenario; each case below breaks one thing in it. Line numbers matter: cases
/// name the line the error must point at.
const BASE: &str = "\
apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata:
  name: megatest
spec:
  cluster: default
  seed: 42
  duration: 2h
  volumes:
    max: 10
    step: {min: 1, max: 3}
    stepPeriod: {min: 10s, max: 30s}
    lifetime: {min: 1m, max: 5m}
    storageClasses: [rsc-a, rsc-b]
    size: 100Mi
    initialAttach: {zero: 30, one: 60, two: 10}
    plugins:
      - plugin: volume-checker
      - plugin: volume-attacher
        params: {period: {min: 30s, max: 60s}}
      - plugin: volume-resizer
        params: {period: {min: 50s, max: 50s}, step: {min: 4Ki, max: 64Ki}, maxSize: 1Gi}
  tasks:
    - name: agent-destroyer
      plugin: pod-destroyer
      params: {namespace: d8-sds-replicated-volume, labelSelector: app=agent,
               pods: {min: 1, max: 2}, period: {min: 30s, max: 60s}}
";

struct Case {
    what: &'static str,
    replace: &'static str,
    with: &'static str,
    path: &'static str,
    line: Option<usize>,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "a seed past 2^63 - 1, which many clients cannot hold",
        replace: "  seed: 42\n",
        with: "  seed: 9223372036854775808\n",
        path: "spec.seed",
        line: Some(7),
        message: "must be at most 9223372036854775807",
    },
    Case {
        what: "unknown top-level field",
        replace: "kind: Scenario\n",
        with: "kind: Scenario\nstatus: {}\n",
        path: "status",
        line: Some(3),
        message: "unknown field `status`",
    },
    Case {
        what: "unknown spec field",
        replace: "  seed: 42\n",
        with: "  seed: 42\n  speed: 3\n",
        path: "spec.speed",
        line: Some(8),
        message: "unknown field `speed`",
    },
    Case {
        what: "unknown nested field",
        replace: "    max: 10\n",
        with: "    max: 10\n    maxx: 11\n",
        path: "spec.volumes.maxx",
        line: Some(11),
        message: "unknown field `maxx`",
    },
    Case {
        what: "duration in parsecs",
        replace: "duration: 2h",
        with: "duration: 10 parsecs",
        path: "spec.duration",
        line: Some(8),
        message: "invalid duration \"10 parsecs\"",
    },
    Case {
        what: "duration as a bare number",
        replace: "duration: 2h",
        with: "duration: 30",
        path: "spec.duration",
        line: Some(8),
        message: "expected a duration",
    },
    Case {
        what: "min greater than max",
        replace: "step: {min: 1, max: 3}",
        with: "step: {min: 5, max: 3}",
        path: "spec.volumes.step.min",
        line: Some(11),
        message: "min (5) is greater than max (3)",
    },
    Case {
        what: "duration range reversed",
        replace: "lifetime: {min: 1m, max: 5m}",
        with: "lifetime: {min: 10m, max: 5m}",
        path: "spec.volumes.lifetime.min",
        line: Some(13),
        message: "min (10m) is greater than max (5m)",
    },
    Case {
        what: "bad scenario name",
        replace: "name: megatest",
        with: "name: Mega_Test",
        path: "metadata.name",
        line: Some(4),
        message: "not a valid name",
    },
    Case {
        what: "wrong kind",
        replace: "kind: Scenario",
        with: "kind: Deployment",
        path: "kind",
        line: Some(2),
        message: "must be Scenario",
    },
    Case {
        what: "wrong apiVersion",
        replace: "apiVersion: chaosctl.dev/v1alpha1",
        with: "apiVersion: v1",
        path: "apiVersion",
        line: Some(1),
        message: "must be chaosctl.dev/v1alpha1",
    },
    Case {
        what: "invalid YAML",
        replace: "    max: 10\n",
        with: "    max: [10\n",
        path: "",
        line: Some(11),
        message: "invalid YAML",
    },
    Case {
        what: "bad size quantity",
        replace: "size: 100Mi",
        with: "size: 100 apples",
        path: "spec.volumes.size",
        line: Some(15),
        message: "invalid quantity",
    },
    Case {
        what: "zero attach weights",
        replace: "{zero: 30, one: 60, two: 10}",
        with: "{zero: 0, one: 0, two: 0}",
        path: "spec.volumes.initialAttach",
        line: Some(16),
        message: "sum to more than 0",
    },
    Case {
        what: "partial attach weights",
        replace: "{zero: 30, one: 60, two: 10}",
        with: "{zero: 30, one: 70}",
        path: "spec.volumes.initialAttach",
        line: Some(16),
        message: "missing field `two`",
    },
    Case {
        what: "no storage classes",
        replace: "storageClasses: [rsc-a, rsc-b]",
        with: "storageClasses: []",
        path: "spec.volumes.storageClasses",
        line: Some(14),
        message: "at least one storage class",
    },
    Case {
        what: "storage class twice",
        replace: "storageClasses: [rsc-a, rsc-b]",
        with: "storageClasses: [rsc-a, rsc-a]",
        path: "spec.volumes.storageClasses[1]",
        line: Some(14),
        message: "listed twice",
    },
    Case {
        what: "maxSize below size",
        replace: "maxSize: 1Gi",
        with: "maxSize: 50Mi",
        path: "spec.volumes.plugins[2].params.maxSize",
        line: Some(22),
        message: "smaller than the volume size 100Mi",
    },
    Case {
        what: "duplicate task names",
        replace: "  tasks:\n",
        with: "  tasks:\n    - {name: agent-destroyer, plugin: pod-destroyer, params: {namespace: x, labelSelector: app=x}}\n",
        path: "spec.tasks[1].name",
        line: Some(25),
        message: "duplicate task name",
    },
    Case {
        what: "unknown plugin param",
        replace: "params: {period: {min: 30s, max: 60s}}",
        with: "params: {period: {min: 30s, max: 60s}, perod: 3s}",
        path: "spec.volumes.plugins[1].params.perod",
        line: Some(20),
        message: "unknown field `perod`",
    },
    Case {
        what: "plugin param range reversed",
        replace: "params: {period: {min: 30s, max: 60s}}",
        with: "params: {period: {min: 90s, max: 60s}}",
        path: "spec.volumes.plugins[1].params.period.min",
        line: Some(20),
        message: "min (1m30s) is greater than max (1m)",
    },
    Case {
        what: "cluster-wide plugin under volumes",
        replace: "- plugin: volume-checker",
        with: "- plugin: pod-destroyer",
        path: "spec.volumes.plugins[0].plugin",
        line: Some(18),
        message: "list it under spec.tasks",
    },
    Case {
        what: "volume plugin as a task",
        replace: "plugin: pod-destroyer",
        with: "plugin: volume-attacher",
        path: "spec.tasks[0].plugin",
        line: Some(25),
        message: "list it under spec.volumes.plugins",
    },
    Case {
        what: "volume-main listed",
        replace: "- plugin: volume-checker",
        with: "- plugin: volume-main",
        path: "spec.volumes.plugins[0].plugin",
        line: Some(18),
        message: "runs for every volume by itself",
    },
    Case {
        what: "same plugin twice",
        replace: "- plugin: volume-checker",
        with: "- plugin: volume-attacher",
        path: "spec.volumes.plugins[1].plugin",
        line: Some(19),
        message: "listed twice",
    },
    Case {
        what: "bad plugin reference",
        replace: "- plugin: volume-checker",
        with: "- plugin: Checker@",
        path: "spec.volumes.plugins[0].plugin",
        line: Some(18),
        message: "invalid plugin name",
    },
    Case {
        what: "missing required field",
        replace: "    size: 100Mi\n",
        with: "",
        path: "spec.volumes",
        line: Some(9),
        message: "missing field `size`",
    },
    Case {
        what: "negative max",
        replace: "max: 10",
        with: "max: -1",
        path: "spec.volumes.max",
        line: Some(10),
        message: "invalid value: integer `-1`",
    },
    Case {
        what: "zero step",
        replace: "step: {min: 1, max: 3}",
        with: "step: {min: 0, max: 3}",
        path: "spec.volumes.step.min",
        line: Some(11),
        message: "at least 1",
    },
    Case {
        what: "duplicate YAML key",
        replace: "  seed: 42\n",
        with: "  seed: 42\n  seed: 43\n",
        path: "",
        line: Some(8),
        message: "duplicate key \"seed\"",
    },
    Case {
        what: "missing pod-destroyer namespace",
        replace: "params: {namespace: d8-sds-replicated-volume, ",
        with: "params: {",
        path: "spec.tasks[0].params.namespace",
        line: Some(26),
        message: "is required (or give a target)",
    },
    Case { what: "nothing to do", replace: "", with: "", path: "spec", line: Some(5), message: "nothing to do" },
];

#[test]
fn the_base_scenario_is_valid() {
    let scenarios = parse_scenarios(BASE).expect("base scenario parses");
    assert_eq!(scenarios.len(), 1);
    let spec = &scenarios[0].spec;
    let volumes = spec.volumes.as_ref().unwrap();
    assert_eq!(volumes.max, 10);
    assert_eq!(volumes.size.bytes(), 100 << 20);
    assert_eq!(volumes.lifetime.max.as_millis(), 300_000);
    assert_eq!(volumes.plugins[1].plugin.builtin(), Some(BuiltinPlugin::VolumeAttacher));
    assert_eq!(spec.tasks[0].name, "agent-destroyer");
}

#[test]
fn every_malformed_scenario_gets_its_error() {
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for case in CASES {
        let text = if case.what == "nothing to do" {
            // Drop volumes and tasks entirely.
            BASE.split("  volumes:").next().unwrap().to_string()
        } else {
            assert!(BASE.contains(case.replace), "{}: the base has no {:?}", case.what, case.replace);
            BASE.replacen(case.replace, case.with, 1)
        };
        let errors = match parse_scenarios(&text) {
            Ok(_) => {
                failures.push(format!("{}: was accepted", case.what));
                continue;
            }
            Err(errors) => errors,
        };
        let matching = errors.0.iter().find(|e| e.path == case.path && e.message.contains(case.message));
        match matching {
            None => {
                failures.push(format!("{}: expected {} / {:?}, got:\n{errors}", case.what, case.path, case.message))
            }
            Some(error) if error.line != case.line => {
                failures.push(format!("{}: expected line {:?}, got {:?} ({error})", case.what, case.line, error.line))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn errors_print_line_path_and_message() {
    let text = BASE.replacen("duration: 2h", "duration: 10 parsecs", 1);
    let errors = parse_scenarios(&text).unwrap_err();
    let shown = errors.to_string();
    assert!(shown.starts_with("line 8: spec.duration: invalid duration \"10 parsecs\""), "{shown}");
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let text =
        BASE.replacen("name: megatest", "name: BAD", 1).replacen("step: {min: 1, max: 3}", "step: {min: 4, max: 3}", 1);
    let errors = parse_scenarios(&text).unwrap_err();
    let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["metadata.name", "spec.volumes.step.min"]);
}

#[test]
fn json_scenarios_parse_and_report_lines() {
    let json = r#"{
  "apiVersion": "chaosctl.dev/v1alpha1",
  "kind": "Scenario",
  "metadata": {"name": "j"},
  "spec": {
    "tasks": [{"name": "t", "plugin": "pod-destroyer",
               "params": {"namespace": "ns", "labelSelector": "app=x", "pods": {"min": 3, "max": 1}}}]
  }
}"#;
    let errors = parse_scenarios(json).unwrap_err();
    let error = errors.first().unwrap();
    assert_eq!(error.path, "spec.tasks[0].params.pods.min");
    assert_eq!(error.line, Some(7));
    let fixed = json.replace("\"min\": 3", "\"min\": 1");
    assert_eq!(parse_scenarios(&fixed).unwrap()[0].metadata.name, "j");
}

#[test]
fn the_examples_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            parse_scenarios(&text).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples/ holds the megatest and the demo scenario");
}

#[test]
fn defaults_fill_what_is_left_out() {
    let text = "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: small}\nspec:\n  volumes: {max: 2, storageClasses: [rsc-a], size: 1Gi}\n";
    let scenario = parse_scenarios(text).unwrap().remove(0);
    assert_eq!(scenario.spec.cluster, "default");
    let volumes = scenario.spec.volumes.unwrap();
    assert_eq!((volumes.step.min, volumes.step.max), (1, 3));
    assert_eq!(volumes.initial_attach.one, 60);
}
