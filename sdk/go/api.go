package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// One method per operation of the document, named after its operationId.

const (
	contentYAML = "application/yaml"
	contentJSON = "application/json"
	contentWasm = "application/wasm"
)

// call sends the operation id with its path parameters and decodes the answer into out.
func (c *Client) call(ctx context.Context, id string, out any, path ...string) error {
	return c.do(ctx, request{op: operation(id), path: path}, out)
}

// ---- Scenarios -----------------------------------------------------------------------------

// ApplyScenario creates a scenario, or updates it when its spec changed (applyScenario). The
// body is one scenario as YAML or JSON. An invalid one is an *APIError with status 422 whose
// FieldErrors name each field at fault and its line.
func (c *Client) ApplyScenario(ctx context.Context, yaml []byte) (*ApplyResponse, error) {
	var out ApplyResponse
	r := request{op: operation("applyScenario"), body: yaml, contentType: contentYAML}
	return result(&out, c.do(ctx, r, &out))
}

// ListScenarios lists every scenario with its status (listScenarios).
func (c *Client) ListScenarios(ctx context.Context) (*ScenarioList, error) {
	var out ScenarioList
	return result(&out, c.call(ctx, "listScenarios", &out))
}

// GetScenario returns one scenario with its status (getScenario).
func (c *Client) GetScenario(ctx context.Context, name string) (*ScenarioView, error) {
	var out ScenarioView
	return result(&out, c.call(ctx, "getScenario", &out, name))
}

// DeleteScenario deletes a scenario (deleteScenario). One with work left is stopped first and
// removed once stopped: the result is then ActionDeleting rather than ActionDeleted.
func (c *Client) DeleteScenario(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "deleteScenario", &out, name))
}

// StopScenario asks the controller to stop a scenario (stopScenario); reason, when not empty,
// is shown in its status.
func (c *Client) StopScenario(ctx context.Context, name, reason string) (*ActionResponse, error) {
	var out ActionResponse
	r := request{op: operation("stopScenario"), path: []string{name}}
	if err := withStopBody(&r, reason); err != nil {
		return nil, err
	}
	return result(&out, c.do(ctx, r, &out))
}

// withStopBody gives r a StopBody when there is a reason.
func withStopBody(r *request, reason string) error {
	if reason == "" {
		return nil
	}
	body, err := json.Marshal(StopBody{Reason: reason})
	if err != nil {
		return err
	}
	r.body, r.contentType = body, contentJSON
	return nil
}

// GetReport returns a scenario's report (getReport).
func (c *Client) GetReport(ctx context.Context, name string) (*Report, error) {
	var out Report
	return result(&out, c.call(ctx, "getReport", &out, name))
}

// EventsParams selects a page of a scenario's journal.
type EventsParams struct {
	// After returns only entries after this sequence number (EventList.Last of the page before).
	After uint64
	// Limit returns at most this many entries; 0 means the server's default (1000).
	Limit int
}

// ListEvents returns a page of a scenario's journal, oldest first (listEvents).
func (c *Client) ListEvents(ctx context.Context, name string, params EventsParams) (*EventList, error) {
	query := url.Values{}
	if params.After > 0 {
		query.Set("after", strconv.FormatUint(params.After, 10))
	}
	if params.Limit > 0 {
		query.Set("limit", strconv.Itoa(params.Limit))
	}
	var out EventList
	r := request{op: operation("listEvents"), path: []string{name}, query: query}
	return result(&out, c.do(ctx, r, &out))
}

// StopAll turns the global kill switch on: every scenario stops, and new ones are refused
// until ResumeAll (stopAll).
func (c *Client) StopAll(ctx context.Context, reason string) (*GlobalStopResponse, error) {
	var out GlobalStopResponse
	r := request{op: operation("stopAll")}
	if err := withStopBody(&r, reason); err != nil {
		return nil, err
	}
	return result(&out, c.do(ctx, r, &out))
}

// ResumeAll turns the kill switch off; stopped scenarios stay stopped (resumeAll).
func (c *Client) ResumeAll(ctx context.Context) (*GlobalStopResponse, error) {
	var out GlobalStopResponse
	return result(&out, c.call(ctx, "resumeAll", &out))
}

// ---- Cluster -------------------------------------------------------------------------------

// ListInstances lists task instances with their status, those of one scenario when scenario
// is not empty (listInstances).
func (c *Client) ListInstances(ctx context.Context, scenario string) (*InstanceList, error) {
	var out InstanceList
	r := request{op: operation("listInstances"), query: optional("scenario", scenario)}
	return result(&out, c.do(ctx, r, &out))
}

// ListWorkers lists the live workers (listWorkers).
func (c *Client) ListWorkers(ctx context.Context) (*WorkerList, error) {
	var out WorkerList
	return result(&out, c.call(ctx, "listWorkers", &out))
}

// CordonWorker stops placing new instances on a worker (cordonWorker).
func (c *Client) CordonWorker(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "cordonWorker", &out, name))
}

// UncordonWorker lifts a worker's cordon or drain (uncordonWorker).
func (c *Client) UncordonWorker(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "uncordonWorker", &out, name))
}

// DrainWorker cordons a worker and moves what it runs elsewhere (drainWorker).
func (c *Client) DrainWorker(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "drainWorker", &out, name))
}

// ---- Plugins -------------------------------------------------------------------------------

// ListPlugins lists the pushed plugins (listPlugins).
func (c *Client) ListPlugins(ctx context.Context) (*PluginList, error) {
	var out PluginList
	return result(&out, c.call(ctx, "listPlugins", &out))
}

// PushPlugin stores a plugin's .wasm component as name@version (pushPlugin). The sha256 of
// wasm is sent along, so that bytes damaged on the way are refused.
func (c *Client) PushPlugin(ctx context.Context, name, version string, wasm []byte) (*PushResponse, error) {
	sum := sha256.Sum256(wasm)
	r := request{
		op:          operation("pushPlugin"),
		path:        []string{name, version},
		query:       url.Values{"digest": {"sha256:" + hex.EncodeToString(sum[:])}},
		body:        wasm,
		contentType: contentWasm,
	}
	var out PushResponse
	return result(&out, c.do(ctx, r, &out))
}

// GetPlugin describes one pushed plugin version (getPlugin).
func (c *Client) GetPlugin(ctx context.Context, name, version string) (*PluginMeta, error) {
	var out PluginMeta
	return result(&out, c.call(ctx, "getPlugin", &out, name, version))
}

// ---- Security ------------------------------------------------------------------------------

// CreateToken makes a token; its secret is in this answer only (createToken).
func (c *Client) CreateToken(ctx context.Context, token TokenRequest) (*TokenCreated, error) {
	body, err := json.Marshal(token)
	if err != nil {
		return nil, err
	}
	var out TokenCreated
	r := request{op: operation("createToken"), body: body, contentType: contentJSON}
	return result(&out, c.do(ctx, r, &out))
}

// ListTokens lists every token, never a secret (listTokens).
func (c *Client) ListTokens(ctx context.Context) (*TokenList, error) {
	var out TokenList
	return result(&out, c.call(ctx, "listTokens", &out))
}

// RevokeToken revokes a token (revokeToken).
func (c *Client) RevokeToken(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "revokeToken", &out, name))
}

// AuditParams selects a window of the audit trail.
type AuditParams struct {
	// Since is how far back (1h, 30m, 7d); the server's default (1h) when empty.
	Since string
	// Who keeps only this token's requests.
	Who string
	// Limit keeps at most this many, the newest; 0 means the server's default (500).
	Limit int
}

// ListAudit returns the audit trail, oldest first (listAudit).
func (c *Client) ListAudit(ctx context.Context, params AuditParams) (*AuditList, error) {
	query := optional("since", params.Since)
	if params.Who != "" {
		query.Set("who", params.Who)
	}
	if params.Limit > 0 {
		query.Set("limit", strconv.Itoa(params.Limit))
	}
	var out AuditList
	return result(&out, c.do(ctx, request{op: operation("listAudit"), query: query}, &out))
}

// ---- Availability --------------------------------------------------------------------------

// ProbesParams filters listProbes.
type ProbesParams struct {
	// Group keeps only this group.
	Group string
	// Scenario keeps only the probes this scenario measures.
	Scenario string
}

// ListProbes lists the probe groups and what each probe shows now (listProbes).
func (c *Client) ListProbes(ctx context.Context, params ProbesParams) (*ProbeGroups, error) {
	query := optional("group", params.Group)
	if params.Scenario != "" {
		query.Set("scenario", params.Scenario)
	}
	var out ProbeGroups
	return result(&out, c.do(ctx, request{op: operation("listProbes"), query: query}, &out))
}

// RangeParams selects an availability range. Zero fields take the server's defaults.
type RangeParams struct {
	// From is the start (aligned down to the step); an hour before To by default.
	From time.Time
	// To is the end (aligned up to the step); now by default.
	To time.Time
	// Step is the length of a step: a multiple of 5m, or of 30s within the last day; 5m by
	// default. It is sent in whole seconds.
	Step time.Duration
	// Group, Probe and Scenario keep only the probes that match.
	Group, Probe, Scenario string
	// MuteDowntimeTypes are the Downtime types to mute: nil for the server's default
	// (Maintenance, InfrastructureMaintenance, InfrastructureAccident), an empty non-nil
	// slice for none.
	MuteDowntimeTypes []DowntimeType
}

// query encodes the parameters.
func (p RangeParams) query() url.Values {
	query := url.Values{}
	if !p.From.IsZero() {
		query.Set("from", strconv.FormatInt(p.From.Unix(), 10))
	}
	if !p.To.IsZero() {
		query.Set("to", strconv.FormatInt(p.To.Unix(), 10))
	}
	if p.Step > 0 {
		query.Set("step", strconv.FormatInt(int64(p.Step/time.Second), 10))
	}
	for key, value := range map[string]string{"group": p.Group, "probe": p.Probe, "scenario": p.Scenario} {
		if value != "" {
			query.Set(key, value)
		}
	}
	if p.MuteDowntimeTypes != nil {
		types := make([]string, len(p.MuteDowntimeTypes))
		for i, t := range p.MuteDowntimeTypes {
			types[i] = string(t)
		}
		query.Set("muteDowntimeTypes", strings.Join(types, ","))
	}
	return query
}

// GetAvailabilityRange returns, per probe and step, the seconds up, down, unknown, muted and
// without data, with the availability and a total (getAvailabilityRange).
func (c *Client) GetAvailabilityRange(ctx context.Context, params RangeParams) (*AvailabilityRange, error) {
	var out AvailabilityRange
	r := request{op: operation("getAvailabilityRange"), query: params.query()}
	return result(&out, c.do(ctx, r, &out))
}

// ListDowntimes lists every stored Downtime (listDowntimes).
func (c *Client) ListDowntimes(ctx context.Context) (*DowntimeList, error) {
	var out DowntimeList
	return result(&out, c.call(ctx, "listDowntimes", &out))
}

// ApplyDowntime creates or replaces a Downtime: one document as YAML or JSON (applyDowntime).
func (c *Client) ApplyDowntime(ctx context.Context, yaml []byte) (*DowntimeApplied, error) {
	var out DowntimeApplied
	r := request{op: operation("applyDowntime"), body: yaml, contentType: contentYAML}
	return result(&out, c.do(ctx, r, &out))
}

// DeleteDowntime deletes a Downtime users applied (deleteDowntime).
func (c *Client) DeleteDowntime(ctx context.Context, name string) (*ActionResponse, error) {
	var out ActionResponse
	return result(&out, c.call(ctx, "deleteDowntime", &out, name))
}

// ---- Health --------------------------------------------------------------------------------

// Healthz returns the liveness answer, "ok" (healthz).
func (c *Client) Healthz(ctx context.Context) (string, error) {
	return c.doText(ctx, request{op: operation("healthz")})
}

// Readyz returns the readiness answer: "ok" and the etcd members that answer, one a line
// (readyz). An apiserver that cannot reach etcd answers 503.
func (c *Client) Readyz(ctx context.Context) (string, error) {
	return c.doText(ctx, request{op: operation("readyz")})
}

// GetMetrics returns the apiserver's metrics as OpenMetrics text (getMetrics).
func (c *Client) GetMetrics(ctx context.Context) (string, error) {
	return c.doText(ctx, request{op: operation("getMetrics")})
}

// GetOpenapi returns the API's OpenAPI document (getOpenapi).
func (c *Client) GetOpenapi(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.call(ctx, "getOpenapi", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// optional is a query of key=value, empty when value is.
func optional(key, value string) url.Values {
	query := url.Values{}
	if value != "" {
		query.Set(key, value)
	}
	return query
}

// result returns out, or nil when err is not.
func result[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
