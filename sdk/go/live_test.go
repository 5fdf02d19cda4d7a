package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	chaos "chaosctl.dev/sdk/go"
	"chaosctl.dev/sdk/go/chaosapi"
)

// The tests in this file run against a live apiserver, named by the environment:
//
//	CHAOS_SERVER   its URL (https://127.0.0.1:8443)
//	CHAOS_TOKEN    an admin token
//	CHAOS_CA       the PEM file of the CA its certificate is signed by
//
// They apply copies of examples/demo.yaml (the demo megatest: volumes on cluster "default"),
// each under a name of its own, and delete them at the end.

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
		chaos.WithRateLimitRetry(20 * time.Second),
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

var demoName = regexp.MustCompile(`(?m)^  name: demo$`)

// demoScenario is examples/demo.yaml under another name, its lines unchanged.
func demoScenario(t *testing.T, name string) string {
	t.Helper()
	text, err := os.ReadFile("../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(demoName.FindAllIndex(text, -1)); n != 1 {
		t.Fatalf("examples/demo.yaml has %d lines `  name: demo`, want 1", n)
	}
	return demoName.ReplaceAllString(string(text), "  name: "+name)
}

// replace replaces old, which must be in text once.
func replace(t *testing.T, text, old, new string) string {
	t.Helper()
	if strings.Count(text, old) != 1 {
		t.Fatalf("examples/demo.yaml holds %q %d times, want once", old, strings.Count(text, old))
	}
	return strings.Replace(text, old, new, 1)
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
		_, err := chaos.Result(client.API.ScenariosAPI.DeleteScenario(ctx, name).Execute())
		if err != nil && !chaos.IsNotFound(err) {
			t.Errorf("cleaning up scenario %s: %v", name, err)
		}
	})
}

func TestScenarioLifecycle(t *testing.T) {
	client := liveClient(t)
	name := uniqueName("demo")
	yaml := demoScenario(t, name)

	applied, err := client.Apply(withTimeout(t, 30*time.Second), []byte(yaml))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	deleteAtEnd(t, client, name)
	if applied.Result != chaosapi.APPLYRESULT_CREATED || applied.Scenario.Metadata.Name != name {
		t.Fatalf("Apply: got %s of %q, want created of %q", applied.Result, applied.Scenario.Metadata.Name, name)
	}
	expectPortByNumber(t, applied.Scenario.Spec)
	again, err := client.Apply(withTimeout(t, 30*time.Second), []byte(yaml))
	if err != nil || again.Result != chaosapi.APPLYRESULT_UNCHANGED {
		t.Fatalf("applying the same text again: got %+v, %v; want unchanged", again, err)
	}
	expectListed(t, client, name)

	running, err := client.WaitForPhase(withTimeout(t, 90*time.Second), name, chaosapi.SCENARIOPHASE_RUNNING, 250*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitForPhase Running: %v", err)
	}
	if running.Status.GetStartedAt().IsZero() {
		t.Errorf("a running scenario has startedAt: %+v", running.Status)
	}
	expectEvents(t, client, name)

	const reason = "the SDK's test is done"
	stopped, err := client.Stop(withTimeout(t, 30*time.Second), name, reason)
	if err != nil || stopped.Result != chaosapi.ACTIONRESULT_STOPPING {
		t.Fatalf("Stop: got %+v, %v; want stopping", stopped, err)
	}
	if again, err := client.Stop(withTimeout(t, 30*time.Second), name, ""); err != nil || again.Result != chaosapi.ACTIONRESULT_ALREADY_STOPPING {
		t.Errorf("Stop again: got %+v, %v; want already-stopping", again, err)
	}
	view, err := client.WaitForPhase(withTimeout(t, 90*time.Second), name, chaosapi.SCENARIOPHASE_STOPPED, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitForPhase Stopped: %v", err)
	}
	if view.Stop.Get().GetReason() != reason || view.Status.GetReason() != reason {
		t.Errorf("the stop keeps its reason: %+v, %+v", view.Stop.Get(), view.Status)
	}
	// Stopped is final: waiting for Running again ends at once.
	_, err = client.WaitForPhase(withTimeout(t, 30*time.Second), name, chaosapi.SCENARIOPHASE_RUNNING, time.Second)
	var phaseErr *chaos.PhaseError
	if !errors.As(err, &phaseErr) || phaseErr.Last != chaosapi.SCENARIOPHASE_STOPPED || phaseErr.Err != nil {
		t.Errorf("waiting for Running after the stop: got %v", err)
	}
	expectReport(t, client, name)
	expectDeleted(t, client, name)
}

// expectPortByNumber checks the demo's HTTP probe reads back its service port, given as a
// number: the generated PortRef, post-processed, against the server's JSON.
func expectPortByNumber(t *testing.T, spec chaosapi.ScenarioSpec) {
	t.Helper()
	for _, probe := range spec.Probes {
		if httpProbe, ok := probe.GetHttpOk(); ok {
			service := httpProbe.GetService()
			if port := service.GetPort(); port.Int32 == nil || *port.Int32 != 80 || port.String != nil {
				t.Errorf("probe %s: the service port reads back as %+v, want the number 80", probe.Name, port.GetActualInstanceValue())
			}
			return
		}
	}
	t.Errorf("the applied scenario has no HTTP probe: %+v", spec.Probes)
}

func expectListed(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	list, err := chaos.Result(client.API.ScenariosAPI.ListScenarios(withTimeout(t, 30*time.Second)).Execute())
	if err != nil {
		t.Fatalf("ListScenarios: %v", err)
	}
	for _, item := range list.Items {
		if item.Metadata.Name == name {
			return
		}
	}
	t.Fatalf("scenario %s is not among the %d listed", name, len(list.Items))
}

// expectEvents streams the scenario's journal until a few entries came, oldest first.
func expectEvents(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	var seen []chaosapi.EventEntry
	opts := chaos.StreamOptions{Poll: 250 * time.Millisecond}
	err := client.StreamEventsWith(withTimeout(t, 60*time.Second), name, opts, func(e chaosapi.EventEntry) error {
		if e.Seq <= 0 || e.Time.IsZero() || e.Kind == "" {
			return fmt.Errorf("an entry without its sequence number, time or kind: %+v", e)
		}
		seen = append(seen, e)
		if len(seen) == 5 {
			return chaos.ErrStopStream
		}
		return nil
	})
	if err != nil {
		t.Fatalf("StreamEvents: %v (seen: %+v)", err, seen)
	}
	// The first page holds them all: no entry was late.
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq <= seen[i-1].Seq {
			t.Errorf("entries out of order: %d after %d", seen[i].Seq, seen[i-1].Seq)
		}
	}
}

func expectReport(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	report, err := client.Report(withTimeout(t, 30*time.Second), name)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if report.Scenario != name || report.Phase != string(chaosapi.SCENARIOPHASE_STOPPED) {
		t.Errorf("Report: got %q in %s, want %q in Stopped", report.Scenario, report.Phase, name)
	}
	if report.Volumes.Started < 1 || report.JournalEntries == 0 {
		t.Errorf("Report: no volume started or no journal entries, though the demo ran: %+v", report)
	}
	actions := map[string]bool{}
	for _, action := range report.Actions {
		actions[action.Action] = true
	}
	if !actions["create-volume"] {
		t.Errorf("Report: no create-volume among the actions %v", actions)
	}
}

// expectDeleted deletes the scenario and waits until it is gone.
func expectDeleted(t *testing.T, client *chaos.Client, name string) {
	t.Helper()
	ctx := withTimeout(t, 60*time.Second)
	deleted, err := chaos.Result(client.API.ScenariosAPI.DeleteScenario(ctx, name).Execute())
	if err != nil {
		t.Fatalf("DeleteScenario: %v", err)
	}
	if deleted.Result != chaosapi.ACTIONRESULT_DELETED && deleted.Result != chaosapi.ACTIONRESULT_DELETING {
		t.Errorf("DeleteScenario: got %s, want deleted or deleting", deleted.Result)
	}
	var last error
	for ctx.Err() == nil {
		_, err := chaos.Result(client.API.ScenariosAPI.GetScenario(ctx, name).Execute())
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
	valid := demoScenario(t, name)
	cases := []struct {
		what, yaml, path, needle string
	}{
		{
			what:   "a wrong type",
			yaml:   replace(t, valid, "\n    max: 6\n", "\n    max: lots\n"),
			path:   "spec.volumes.max",
			needle: "max: lots",
		},
		{
			what:   "an unknown field",
			yaml:   replace(t, valid, "\n    size: 100Mi\n", "\n    size: 100Mi\n    colour: red\n"),
			path:   "spec.volumes.colour",
			needle: "colour: red",
		},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			_, err := client.Apply(withTimeout(t, 30*time.Second), []byte(tc.yaml))
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
	t.Run("several problems", func(t *testing.T) {
		yaml := replace(t, valid, "\n  duration: 10m\n", "\n  duration: 0s\n")
		yaml = replace(t, yaml, "\n      plugin: pod-destroyer\n", "\n      plugin: pod-destroyer\n      replicas: 0\n")
		_, err := client.Apply(withTimeout(t, 30*time.Second), []byte(yaml))
		apiErr := expectInvalid(t, err)
		if len(apiErr.Errors) < 2 {
			t.Errorf("several problems are listed in Errors: got %+v", apiErr)
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
	})
	_, err := chaos.Result(client.API.ScenariosAPI.GetScenario(withTimeout(t, 30*time.Second), name).Execute())
	if !chaos.IsNotFound(err) {
		t.Errorf("an invalid scenario is not stored: GetScenario answered %v", err)
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
	scenarios := client.API.ScenariosAPI
	_, getErr := chaos.Result(scenarios.GetScenario(ctx, name).Execute())
	_, eventsErr := chaos.Result(scenarios.ListEvents(ctx, name).Execute())
	_, deleteErr := chaos.Result(scenarios.DeleteScenario(ctx, name).Execute())
	_, reportErr := client.Report(ctx, name)
	_, stopErr := client.Stop(ctx, name, "")
	_, waitErr := client.WaitForPhase(ctx, name, chaosapi.SCENARIOPHASE_RUNNING, time.Second)
	errs := map[string]error{"get": getErr, "events": eventsErr, "delete": deleteErr, "report": reportErr, "stop": stopErr, "wait": waitErr}
	for what, err := range errs {
		apiErr, ok := chaos.AsAPIError(err)
		if !ok || !chaos.IsNotFound(err) || apiErr.Code != "NotFound" || !strings.Contains(apiErr.Message, name) {
			t.Errorf("%s of a missing scenario: want a 404 NotFound naming it, got %v", what, err)
		}
	}
}

func TestNoTokenIsUnauthenticated(t *testing.T) {
	client := liveClient(t, chaos.WithToken(""))
	_, err := chaos.Result(client.API.ScenariosAPI.ListScenarios(withTimeout(t, 60*time.Second)).Execute())
	if apiErr, ok := chaos.AsAPIError(err); !ok || !chaos.IsUnauthenticated(err) || apiErr.Code != "Unauthenticated" {
		t.Fatalf("want a 401 Unauthenticated, got %v", err)
	}
	if body, err := chaos.ResultBody(client.API.HealthAPI.Healthz(withTimeout(t, 30*time.Second)).Execute()); err != nil || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz needs no token: got %q, %v", body, err)
	}
}

func TestAvailabilityIsAlignedToItsStep(t *testing.T) {
	client := liveClient(t)
	now := time.Now()
	answer, err := client.Availability(withTimeout(t, 30*time.Second), chaos.RangeParams{
		From: now.Add(-time.Hour), To: now, Step: 5 * time.Minute, MuteDowntimeTypes: []chaosapi.DowntimeType{},
	})
	if err != nil {
		t.Fatalf("Availability: %v", err)
	}
	if answer.Step != 300 || answer.From%300 != 0 || answer.To%300 != 0 || len(answer.Muted) != 0 {
		t.Errorf("got step %d over %d..%d muting %v; want 300, aligned to it, muting none", answer.Step, answer.From, answer.To, answer.Muted)
	}
	if answer.From > now.Add(-time.Hour).Unix() || answer.To < now.Unix() {
		t.Errorf("the range %d..%d does not cover the hour asked for", answer.From, answer.To)
	}
	// A range backwards is refused, naming what is wrong.
	_, err = client.Availability(withTimeout(t, 30*time.Second), chaos.RangeParams{From: now, To: now.Add(-time.Hour)})
	if !chaos.IsBadRequest(err) {
		t.Errorf("a range backwards: got %v, want a 400", err)
	}
}
