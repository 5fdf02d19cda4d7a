// Package chaos is a client for chaos-apiserver, the REST API of the chaos orchestrator.
//
// A [Client] has one method per operation of the API's OpenAPI document (served at
// /openapi.json), named after the operation's id: [Client.ApplyScenario] for applyScenario,
// [Client.GetScenario] for getScenario, and so on. [Operations] lists them; a test keeps that
// table in step with the document a live server serves.
//
// On top of those, a few helpers are written for test suites that drive scenarios:
// [Client.ApplyFile], [Client.Apply], [Client.WaitForPhase], [Client.StreamEvents],
// [Client.Report] and [Client.Availability]. They retry what is safe to retry (a server that
// is restarting, a rate limit) until their context ends.
//
// Every answer other than 2xx is an [*APIError], which carries the server's error body: its
// code, its message and, for an invalid scenario, the path and line of each field at fault.
//
//	client, err := chaos.NewClient("https://chaos.example:8443",
//		chaos.WithToken(token), chaos.WithCAFile("ca.pem"))
//	if err != nil { ... }
//	applied, err := client.ApplyFile(ctx, "scenario.yaml")
//	var apiErr *chaos.APIError
//	if errors.As(err, &apiErr) && apiErr.Line > 0 { ... }
//
// The package uses the standard library only.
package chaos
