// Command smoke drives a scenario through the Go SDK: it sees a broken scenario refused with its
// line, applies the scenario file given, waits for it to run, prints its first journal entries,
// stops it, waits for it to stop and checks its report.
//
//	CHAOS_SERVER=https://127.0.0.1:7443 CHAOS_TOKEN=... CHAOS_CA=ca.pem go run ./examples/smoke ../../examples/demo.yaml
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	chaos "chaosctl.dev/sdk/go"
	"chaosctl.dev/sdk/go/chaosapi"
)

// broken has a word where a number goes, on line 6.
const broken = `apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {name: sdk-example}
spec:
  tasks:
    - {name: idle, plugin: noop, replicas: lots}
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: smoke SCENARIO.yaml")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(path string) error {
	client, err := chaos.NewClient(os.Getenv("CHAOS_SERVER"),
		chaos.WithToken(os.Getenv("CHAOS_TOKEN")),
		chaos.WithCAFile(os.Getenv("CHAOS_CA")),
		chaos.WithTimeout(30*time.Second))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	_, err = client.Apply(ctx, []byte(broken))
	apiErr, ok := chaos.AsAPIError(err)
	if !ok || !chaos.IsInvalid(err) {
		return fmt.Errorf("the broken scenario: want a 422, got %v", err)
	}
	for _, problem := range apiErr.FieldErrors() {
		fmt.Printf("refused: line %d: %s: %s\n", problem.Line, problem.Path, problem.Message)
	}

	applied, err := client.ApplyFile(ctx, path) // the file's own text is sent
	if err != nil {
		return err // a refusal names the lines of the file
	}
	name := applied.Scenario.Metadata.Name
	fmt.Printf("scenario %s %s\n", name, applied.Result)

	if _, err := client.WaitForPhase(ctx, name, chaosapi.SCENARIOPHASE_RUNNING, time.Second); err != nil {
		return err
	}
	seen := 0
	err = client.StreamEvents(ctx, name, func(e chaosapi.EventEntry) error {
		fmt.Printf("%d %s %-14s %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Kind, e.GetInstance())
		if seen++; seen == 20 {
			return chaos.ErrStopStream
		}
		return nil
	})
	if err != nil {
		return err
	}

	if _, err := client.Stop(ctx, name, "seen enough"); err != nil {
		return err
	}
	if _, err := client.WaitForPhase(ctx, name, chaosapi.SCENARIOPHASE_STOPPED, time.Second); err != nil {
		return err
	}
	report, err := client.Report(ctx, name)
	if err != nil {
		return err
	}
	if report.Volumes.Started == 0 {
		return errors.New("the report counts no volume started")
	}
	fmt.Printf("%s: %d volumes started, verdicts %+v\n", name, report.Volumes.Started, report.Verdicts)
	for _, probe := range report.Availability {
		if availability, ok := probe.GetAvailabilityOk(); ok {
			fmt.Printf("  %s/%s: %.2f%% available\n", probe.Group, probe.Probe, *availability*100)
		}
	}
	return nil
}
