package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	chaos "github.com/chaos-orchestrator/sdk-go"
)

// The tests in this file run against a live apiserver, named by the environment:
//
//	CHAOS_SERVER   its URL (https://127.0.0.1:8443)
//	CHAOS_TOKEN    an admin token
//	CHAOS_CA       the PEM file of the CA its certificate is signed by
//	CHAOS_CLUSTER  the cluster the test scenarios act on ("default" when unset)

// liveClient returns a client of the apiserver the environment names, and fails the test when
// it names none.
func liveClient(t *testing.T, opts ...chaos.Option) *chaos.Client {
	t.Helper()
	server, token, ca := os.Getenv("CHAOS_SERVER"), os.Getenv("CHAOS_TOKEN"), os.Getenv("CHAOS_CA")
	var missing []string
	for name, value := range map[string]string{"CHAOS_SERVER": server, "CHAOS_TOKEN": token, "CHAOS_CA": ca} {
		if value == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("this test needs a live chaos-apiserver: set %s (CHAOS_SERVER: its URL, "+
			"CHAOS_TOKEN: an admin token, CHAOS_CA: its CA's PEM file); see README.md",
			strings.Join(missing, ", "))
	}
	base := []chaos.Option{
		chaos.WithToken(token),
		chaos.WithCAFile(ca),
		chaos.WithTimeout(30 * time.Second),
		// The stack may be busy with other clients of the same token.
		chaos.WithRateLimitRetry(time.Minute),
	}
	client, err := chaos.NewClient(server, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return client
}

// uniqueName is a scenario name of this run: reruns on the same stack do not collide.
func uniqueName(what string) string {
	return fmt.Sprintf("sdkgo-%s-%s", what, strconv.FormatInt(time.Now().UnixNano(), 36))
}

// cluster is the cluster the test scenarios act on.
func cluster() string {
	if name := os.Getenv("CHAOS_CLUSTER"); name != "" {
		return name
	}
	return "default"
}

// idleScenario is a scenario of one noop task: it runs until stopped, touching nothing, and
// stops itself after ten minutes should a test not get to stop it.
func idleScenario(name string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata:
  name: %s
  labels: {created-by: sdk-go-tests}
spec:
  cluster: %s
  duration: 10m
  tasks:
    - name: idle
      plugin: noop
`, name, cluster()))
}

// withTimeout is a context for one step of a test.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// deleteAtEnd deletes the scenario when the test ends, whatever state it is in.
func deleteAtEnd(t *testing.T, client *chaos.Client, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteScenario(ctx, name); err != nil && !chaos.IsNotFound(err) {
			t.Errorf("cleaning up scenario %s: %v", name, err)
		}
	})
}

func TestScenarioLifecycle(t *testing.T) {
	client := liveClient(t)
	name := uniqueName("life")
	yaml := idleScenario(name)

	applied, err := client.Apply(withTimeout(t, 30*time.Second), yaml)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	deleteAtEnd(t, client, name)
	if applied.Result != chaos.ApplyCreated || applied.Scenario.Metadata.Name != name {
		t.Fatalf("Apply: got %s of %q, want created of %q", applied.Result, applied.Scenario.Metadata.Name, name)
	}
	if applied.Scenario.Metadata.Generation != 1 || applied.Scenario.Spec.Seed == nil {
		t.Errorf("a new scenario has generation 1 and a seed: got %d and %v",
			applied.Scenario.Metadata.Generation, applied.Scenario.Spec.Seed)
	}
	again, err := client.ApplyScenario(withTimeout(t, 30*time.Second), yaml)
	if err != nil || again.Result != chaos.ApplyUnchanged {
		t.Fatalf("applying the same spec again: got %+v, %v; want unchanged", again, err)
	}
	expectListed(t, client, name)

	running, err := client.WaitForPhase(withTimeout(t, 90*time.Second), name, chaos.PhaseRunning, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitForPhase Running: %v", err)
	}
	if running.Status.StartedAt == nil {
		t.Errorf("a running scenario has startedAt: %+v", running.Status)
	}
	expectRunStarted(t, client, name)

	stopped, err := client.StopScenario(withTimeout(t, 30*time.Second), name, "the SDK's test is done")
	if err != nil || stopped.Result != chaos.ActionStopping {
		t.Fatalf("StopScenario: got %+v, %v; want stopping", stopped, err)
	}
	view, err := client.WaitForPhase(withTimeout(t, 90*time.Second), name, chaos.PhaseStopped, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitForPhase Stopped: %v", err)
	}
	if view.Stop == nil || view.Stop.Reason != "the SDK's test is done" {
		t.Errorf("the stop request keeps its reason: %+v", view.Stop)
	}
	expectReport(t, client, name)
	expectDeleted(t, client, name)
}

func expectListed(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	list, err := client.ListScenarios(withTimeout(t, 30*time.Second))
	if err != nil {
		t.Fatalf("ListScenarios: %v", err)
	}
	for _, item := range list.Items {
		if item.Metadata.Name == name {
			if item.Metadata.Labels["created-by"] != "sdk-go-tests" {
				t.Errorf("listed without its labels: %+v", item.Metadata)
			}
			return
		}
	}
	t.Fatalf("scenario %s is not among the %d listed", name, len(list.Items))
}

// expectRunStarted streams the scenario's journal until its task's run-started entry.
func expectRunStarted(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	var kinds []string
	opts := chaos.StreamOptions{Poll: 300 * time.Millisecond}
	err := client.StreamEventsWith(withTimeout(t, 60*time.Second), name, opts, func(e chaos.EventEntry) error {
		kinds = append(kinds, e.Kind)
		if e.Seq == 0 || e.Time.IsZero() {
			return fmt.Errorf("an entry without its sequence number or time: %+v", e)
		}
		if e.Kind == "run-started" && strings.HasPrefix(e.Instance, name+"-") {
			return chaos.ErrStopStream
		}
		return nil
	})
	if err != nil {
		t.Fatalf("StreamEvents: %v (kinds seen: %v)", err, kinds)
	}
}

func expectReport(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	report, err := client.Report(withTimeout(t, 30*time.Second), name)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if report.Scenario != name || report.Phase != chaos.PhaseStopped {
		t.Errorf("Report: got %q in %s, want %q in Stopped", report.Scenario, report.Phase, name)
	}
	if report.JournalEntries == 0 {
		t.Errorf("Report: no journal entries, though the task ran: %+v", report)
	}
}

// expectDeleted deletes the scenario and waits until it is gone.
func expectDeleted(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	ctx := withTimeout(t, 60*time.Second)
	deleted, err := client.DeleteScenario(ctx, name)
	if err != nil {
		t.Fatalf("DeleteScenario: %v", err)
	}
	if deleted.Result != chaos.ActionDeleted && deleted.Result != chaos.ActionDeleting {
		t.Errorf("DeleteScenario: got %s, want deleted or deleting", deleted.Result)
	}
	var last error
	for ctx.Err() == nil {
		_, err := client.GetScenario(ctx, name)
		if chaos.IsNotFound(err) {
			return
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("scenario %s still there a minute after its deletion (%s; last error: %v)", name, deleted.Result, last)
}

// lineOf is the 1-based line of text holding needle.
func lineOf(t *testing.T, text, needle string) int {
	t.Helper()
	for i, line := range strings.Split(text, "\n") {
		if strings.Contains(line, needle) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q", needle)
	return 0
}

func TestInvalidScenarioNamesTheFieldAndItsLine(t *testing.T) {
	client := liveClient(t)
	name := uniqueName("bad")
	valid := string(idleScenario(name))
	cases := []struct {
		what, yaml, path, needle string
	}{
		{
			what:   "a wrong type",
			yaml:   valid + "      replicas: lots\n",
			path:   "spec.tasks[0].replicas",
			needle: "replicas: lots",
		},
		{
			what:   "an unknown field",
			yaml:   strings.Replace(valid, "  duration: 10m\n", "  duration: 10m\n  bogus: 1\n", 1),
			path:   "spec.bogus",
			needle: "bogus: 1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			_, err := client.ApplyScenario(withTimeout(t, 30*time.Second), []byte(tc.yaml))
			apiErr := expectInvalid(t, err)
			line := lineOf(t, tc.yaml, tc.needle)
			if apiErr.Field != tc.path || apiErr.Line != line {
				t.Errorf("got field %q on line %d, want %q on line %d: %v", apiErr.Field, apiErr.Line, tc.path, line, err)
			}
			fields := apiErr.FieldErrors()
			if len(fields) != 1 || fields[0].Path != tc.path || fields[0].Line != line || fields[0].Message == "" {
				t.Errorf("FieldErrors: got %+v, want one for %s on line %d", fields, tc.path, line)
			}
		})
	}
	t.Run("several problems", func(t *testing.T) { expectSeveralProblems(t, client, valid) })
	if _, err := client.GetScenario(withTimeout(t, 30*time.Second), name); !chaos.IsNotFound(err) {
		t.Errorf("an invalid scenario is not stored: GetScenario answered %v", err)
	}
}

// expectSeveralProblems applies a scenario with two problems and checks both are named.
func expectSeveralProblems(t *testing.T, client *chaos.Client, valid string) {
	yaml := strings.Replace(valid, "      plugin: noop\n", "      plugin: noop\n      replicas: 0\n", 1)
	yaml = strings.Replace(yaml, "  duration: 10m\n", "  duration: 0s\n", 1)
	_, err := client.ApplyScenario(withTimeout(t, 30*time.Second), []byte(yaml))
	apiErr := expectInvalid(t, err)
	if len(apiErr.Errors) < 2 {
		t.Errorf("several problems are listed in Errors: got %+v", apiErr.ErrorBody)
	}
	lines := map[string]int{}
	for _, problem := range apiErr.FieldErrors() {
		lines[problem.Path] = problem.Line
	}
	want := map[string]int{
		"spec.duration":          lineOf(t, yaml, "duration: 0s"),
		"spec.tasks[0].replicas": lineOf(t, yaml, "replicas: 0"),
	}
	for path, line := range want {
		if lines[path] != line {
			t.Errorf("%s: got line %d, want %d (all: %+v)", path, lines[path], line, apiErr.FieldErrors())
		}
	}
}

// expectInvalid checks err is a 422 Invalid *APIError and returns it.
func expectInvalid(t *testing.T, err error) *chaos.APIError {
	t.Helper()
	var apiErr *chaos.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("want an *APIError, got %T: %v", err, err)
	}
	if apiErr.Status != 422 || apiErr.Code != "Invalid" || !chaos.IsInvalid(err) {
		t.Fatalf("want 422 Invalid, got %d %s: %v", apiErr.Status, apiErr.Code, err)
	}
	return apiErr
}

func TestMissingScenarioIsNotFound(t *testing.T) {
	client := liveClient(t)
	name := uniqueName("missing")
	ctx := withTimeout(t, 30*time.Second)
	_, getErr := client.GetScenario(ctx, name)
	_, reportErr := client.GetReport(ctx, name)
	_, eventsErr := client.ListEvents(ctx, name, chaos.EventsParams{})
	_, stopErr := client.StopScenario(ctx, name, "")
	for what, err := range map[string]error{"get": getErr, "report": reportErr, "events": eventsErr, "stop": stopErr} {
		apiErr, ok := chaos.AsAPIError(err)
		if !ok || !chaos.IsNotFound(err) || apiErr.Code != "NotFound" || !strings.Contains(apiErr.Message, name) {
			t.Errorf("%s of a missing scenario: want a 404 NotFound naming it, got %v", what, err)
		}
	}
}

func TestNoTokenIsUnauthenticated(t *testing.T) {
	client := liveClient(t, chaos.WithToken(""))
	_, err := client.ListScenarios(withTimeout(t, 60*time.Second))
	if apiErr, ok := chaos.AsAPIError(err); !ok || !chaos.IsUnauthenticated(err) || apiErr.Code != "Unauthenticated" {
		t.Fatalf("want a 401 Unauthenticated, got %v", err)
	}
	if _, err := client.Healthz(withTimeout(t, 30*time.Second)); err != nil {
		t.Errorf("healthz needs no token: %v", err)
	}
}
