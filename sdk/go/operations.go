package chaos

import "fmt"

// Operation is one operation of the API's OpenAPI document.
type Operation struct {
	// ID is the document's operationId; the Client method is named after it.
	ID string
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path template, with {name} placeholders.
	Path string
}

// String formats the operation as METHOD PATH (id).
func (o Operation) String() string { return fmt.Sprintf("%s %s (%s)", o.Method, o.Path, o.ID) }

// Operations is every operation of the API, as the document lists them. The Client's methods
// take their method and path from here; TestOperationsMatchTheDocument fails when the
// document served by a live apiserver and this table differ.
var Operations = []Operation{
	{ID: "applyScenario", Method: "POST", Path: "/v1/scenarios"},
	{ID: "listScenarios", Method: "GET", Path: "/v1/scenarios"},
	{ID: "getScenario", Method: "GET", Path: "/v1/scenarios/{name}"},
	{ID: "deleteScenario", Method: "DELETE", Path: "/v1/scenarios/{name}"},
	{ID: "stopScenario", Method: "POST", Path: "/v1/scenarios/{name}/stop"},
	{ID: "getReport", Method: "GET", Path: "/v1/scenarios/{name}/report"},
	{ID: "listEvents", Method: "GET", Path: "/v1/scenarios/{name}/events"},
	{ID: "stopAll", Method: "POST", Path: "/v1/stop-all"},
	{ID: "resumeAll", Method: "POST", Path: "/v1/resume"},
	{ID: "listInstances", Method: "GET", Path: "/v1/instances"},
	{ID: "listWorkers", Method: "GET", Path: "/v1/workers"},
	{ID: "cordonWorker", Method: "POST", Path: "/v1/workers/{name}/cordon"},
	{ID: "uncordonWorker", Method: "DELETE", Path: "/v1/workers/{name}/cordon"},
	{ID: "drainWorker", Method: "POST", Path: "/v1/workers/{name}/drain"},
	{ID: "listPlugins", Method: "GET", Path: "/v1/plugins"},
	{ID: "pushPlugin", Method: "PUT", Path: "/v1/plugins/{name}/{version}"},
	{ID: "getPlugin", Method: "GET", Path: "/v1/plugins/{name}/{version}"},
	{ID: "createToken", Method: "POST", Path: "/v1/tokens"},
	{ID: "listTokens", Method: "GET", Path: "/v1/tokens"},
	{ID: "revokeToken", Method: "DELETE", Path: "/v1/tokens/{name}"},
	{ID: "listAudit", Method: "GET", Path: "/v1/audit"},
	{ID: "listProbes", Method: "GET", Path: "/v1/availability/probes"},
	{ID: "getAvailabilityRange", Method: "GET", Path: "/v1/availability/range"},
	{ID: "listDowntimes", Method: "GET", Path: "/v1/downtimes"},
	{ID: "applyDowntime", Method: "POST", Path: "/v1/downtimes"},
	{ID: "deleteDowntime", Method: "DELETE", Path: "/v1/downtimes/{name}"},
	{ID: "healthz", Method: "GET", Path: "/healthz"},
	{ID: "readyz", Method: "GET", Path: "/readyz"},
	{ID: "getMetrics", Method: "GET", Path: "/metrics"},
	{ID: "getOpenapi", Method: "GET", Path: "/openapi.json"},
}

// operationsByID indexes Operations.
var operationsByID = func() map[string]Operation {
	byID := make(map[string]Operation, len(Operations))
	for _, op := range Operations {
		byID[op.ID] = op
	}
	return byID
}()

// operation returns the operation called id; an unknown id is a bug in this package.
func operation(id string) Operation {
	op, ok := operationsByID[id]
	if !ok {
		panic(fmt.Sprintf("chaos: no operation %q in Operations", id))
	}
	return op
}
