// Package chaos is a client for chaos-apiserver, the REST API of the chaos orchestrator.
//
// It has two parts. The package [chaosctl.dev/sdk/go/chaosapi] is generated from the API's
// OpenAPI document (sdk/openapi.json, served at /openapi.json) by openapi-generator, with
// scripts/sdk-generate.sh: one method per operation, and a model per schema (ScenarioView,
// Report, EventEntry, ...). It is never edited by hand, and the SDK suite fails when it is not
// what the document generates. This package, written by hand, is a thin layer on top.
//
// [NewClient] builds the generated client, [Client.API], for a server URL: with the bearer
// token, TLS that is always verified, a timeout and, if asked, waiting out rate limits.
//
// Helpers for test suites that drive scenarios return the generated models: [Client.ApplyFile]
// and [Client.Apply] (which send the YAML as written, so that errors carry its lines),
// [Client.WaitForPhase], [Client.StreamEvents], [Client.Stop], [Client.Report] and
// [Client.Availability]. They retry what is safe to retry (a server that is restarting, a rate
// limit) until their context ends.
//
// Every answer other than 2xx is an [*APIError], which carries the server's error body: its
// code, its message and, for an invalid scenario, the path and line of each field at fault.
// [Result] gives the same for a call of the generated client. For example:
//
//	client, err := chaos.NewClient("https://chaos.example:7443",
//		chaos.WithToken(token), chaos.WithCAFile("ca.pem"))
//	if err != nil { ... }
//	applied, err := client.ApplyFile(ctx, "scenario.yaml")
//	var apiErr *chaos.APIError
//	if errors.As(err, &apiErr) && apiErr.Line > 0 { ... }
//	workers, err := chaos.Result(client.API.ClusterAPI.ListWorkers(ctx).Execute())
//
// Both packages use the standard library only.
package chaos
