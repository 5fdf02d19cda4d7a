//! What a user sees for a broken workflow: each mistake refused at apply with its field path
//! and line — a wait on an unknown probe, an `end` of a fault that is not running, an invalid
//! pattern, a percentage over 100, a workflow with no steps, a fault plugin in the wrong place.

use chaos_def::parse_scenarios;

/// eris' basic flow; each case breaks one thing in it. Line numbers matter.
const BASE: &str = "\
apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata:
  name: eris
spec:
  probes:
    - name: smoke
      group: synthetic
      http: {pod: {namespace: smoke-mini, name: smoke-mini-a-0, port: 8080}, jq: '.status == \"ok\"'}
  workflows:
    - name: node-failure
      steps:
        - name: suspend
          fault:
            plugin: process-signal
            params: {signal: SIGSTOP}
            target: {namespaces: [smoke-mini], nameRegex: '^smoke-mini-a-', mode: fixed-percent, value: 50}
        - name: detect
          waitFor: {probe: smoke, state: down, within: 10s}
        - name: kill
          fault:
            plugin: process-signal
            params: {signal: SIGKILL}
            target: {namespaces: [smoke-mini], containerRegex: ['^smoke'], mode: one}
        - end: suspend
        - name: recover
          waitFor: {probe: smoke, state: up, within: 120s}
";

struct Case {
    what: &'static str,
    replace: &'static str,
    with: &'static str,
    path: &'static str,
    line: usize,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "a wait on an unknown probe",
        replace: "probe: smoke, state: down",
        with: "probe: smoky, state: down",
        path: "spec.workflows[0].steps[1].waitFor.probe",
        line: 19,
        message: "no probe named \"smoky\" in spec.probes (known: smoke)",
    },
    Case {
        what: "an end of a step that is not a fault",
        replace: "- end: suspend",
        with: "- end: detect",
        path: "spec.workflows[0].steps[3].end",
        line: 25,
        message: "\"detect\" is not a fault running at this point",
    },
    Case {
        what: "an invalid name pattern",
        replace: "nameRegex: '^smoke-mini-a-'",
        with: "nameRegex: '^smoke-(mini'",
        path: "spec.workflows[0].steps[0].fault.target.nameRegex",
        line: 17,
        message: "invalid regular expression",
    },
    Case {
        what: "an invalid container pattern",
        replace: "containerRegex: ['^smoke']",
        with: "containerRegex: ['^smoke', '[a-']",
        path: "spec.workflows[0].steps[2].fault.target.containerRegex[1]",
        line: 24,
        message: "invalid regular expression",
    },
    Case {
        what: "a percentage over 100",
        replace: "value: 50",
        with: "value: 150",
        path: "spec.workflows[0].steps[0].fault.target.value",
        line: 17,
        message: "a percentage is at most 100, found 150",
    },
    Case {
        what: "a workflow with no steps",
        replace: "      steps:\n        - name: suspend",
        with: "      steps: []\n      other:\n        - name: suspend",
        path: "spec.workflows[0].other",
        line: 13,
        message: "unknown field `other`",
    },
    Case {
        what: "an unknown signal",
        replace: "signal: SIGKILL",
        with: "signal: SIGHUP",
        path: "spec.workflows[0].steps[2].fault.params.signal",
        line: 23,
        message: "unknown variant `SIGHUP`",
    },
    Case {
        what: "process-signal without a target",
        replace: "            target: {namespaces: [smoke-mini], containerRegex: ['^smoke'], mode: one}\n",
        with: "",
        path: "spec.workflows[0].steps[2].fault.target",
        line: 21,
        message: "process-signal needs a target",
    },
    Case {
        what: "a step of two kinds",
        replace: "          waitFor: {probe: smoke, state: up, within: 120s}",
        with: "          waitFor: {probe: smoke, state: up, within: 120s}\n          sleep: 5s",
        path: "spec.workflows[0].steps[4]",
        line: 26,
        message: "a step is exactly one of",
    },
    Case {
        what: "a volume plugin as a fault",
        replace: "plugin: process-signal\n            params: {signal: SIGKILL}",
        with: "plugin: volume-attacher\n            params: {signal: SIGKILL}",
        path: "spec.workflows[0].steps[2].fault.plugin",
        line: 22,
        message: "acts on one volume",
    },
];

#[test]
fn the_base_workflow_is_valid() {
    let scenario = parse_scenarios(BASE).unwrap_or_else(|e| panic!("{e}")).remove(0);
    assert_eq!(scenario.spec.workflows[0].steps.len(), 5);
}

#[test]
fn every_broken_workflow_gets_its_error_with_path_and_line() {
    let mut failures = Vec::new();
    for case in CASES {
        assert!(BASE.contains(case.replace), "{}: the base has no {:?}", case.what, case.replace);
        let text = BASE.replacen(case.replace, case.with, 1);
        let errors = match parse_scenarios(&text) {
            Ok(_) => {
                failures.push(format!("{}: was accepted", case.what));
                continue;
            }
            Err(errors) => errors,
        };
        match errors.0.iter().find(|e| e.path == case.path && e.message.contains(case.message)) {
            None => {
                failures.push(format!("{}: expected {} / {:?}, got:\n{errors}", case.what, case.path, case.message))
            }
            Some(error) if error.line != Some(case.line) => {
                failures.push(format!("{}: expected line {}, got {:?} ({error})", case.what, case.line, error.line))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn an_empty_workflow_is_refused() {
    let text = BASE.split("      steps:").next().unwrap().to_string() + "      steps: []\n";
    let errors = parse_scenarios(&text).unwrap_err();
    let error = errors.0.iter().find(|e| e.path == "spec.workflows[0].steps").expect("the steps are named");
    assert!(error.message.contains("needs at least one step"), "{error}");
    assert_eq!(error.line, Some(12));
}
