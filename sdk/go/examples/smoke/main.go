// Command smoke applies a scenario, waits for it to run, prints its journal for a while, stops
// it and prints its report.
//
//	CHAOS_SERVER=https://127.0.0.1:8443 CHAOS_TOKEN=... CHAOS_CA=ca.pem go run ./examples/smoke scenario.yaml
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	chaos "github.com/chaos-orchestrator/sdk-go"
)

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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	applied, err := client.ApplyFile(ctx, path)
	var apiErr *chaos.APIError
	if errors.As(err, &apiErr) && chaos.IsInvalid(err) {
		for _, problem := range apiErr.FieldErrors() {
			fmt.Fprintf(os.Stderr, "%s:%d: %s: %s\n", path, problem.Line, problem.Path, problem.Message)
		}
		return errors.New("the scenario is invalid")
	}
	if err != nil {
		return err
	}
	name := applied.Scenario.Metadata.Name
	fmt.Printf("scenario %s %s\n", name, applied.Result)

	if _, err := client.WaitForPhase(ctx, name, chaos.PhaseRunning, time.Second); err != nil {
		return err
	}
	watch, stopWatching := context.WithTimeout(ctx, 20*time.Second)
	defer stopWatching()
	err = client.StreamEvents(watch, name, func(e chaos.EventEntry) error {
		fmt.Printf("%s %-14s %s %v\n", e.Time.Format(time.RFC3339), e.Kind, e.Instance, e.Fields)
		return nil
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}

	if _, err := client.StopScenario(ctx, name, "smoke test done"); err != nil {
		return err
	}
	if _, err := client.WaitForPhase(ctx, name, chaos.PhaseStopped, time.Second); err != nil {
		return err
	}
	report, err := client.Report(ctx, name)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d journal entries, %d volumes started, verdicts %+v\n",
		report.Scenario, report.JournalEntries, report.Volumes.Started, report.Verdicts)
	for _, a := range report.Availability {
		if a.Availability != nil {
			fmt.Printf("  %s/%s: %.2f%% available\n", a.Group, a.Probe, *a.Availability*100)
		}
	}
	return nil
}
