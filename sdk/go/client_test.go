package chaos_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	chaos "chaosctl.dev/sdk/go"
	"chaosctl.dev/sdk/go/chaosapi"
)

// The tests in this file need no apiserver: each serves what it needs over TLS.

// fakeServer serves handler over TLS and returns a client that trusts its certificate.
func fakeServer(t *testing.T, handler http.HandlerFunc, opts ...chaos.Option) *chaos.Client {
	t.Helper()
	server := httptest.NewTLSServer(handler)
	t.Cleanup(server.Close)
	pool := x509.NewCertPool()
	pool.AddCert(server.Certificate())
	client, err := chaos.NewClient(server.URL, append([]chaos.Option{chaos.WithCAPool(pool)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return client
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// scenarioView is a scenario as served, in the given phase (none when empty).
func scenarioView(name string, phase chaosapi.ScenarioPhase, reason string) *chaosapi.ScenarioView {
	now := time.Now().UTC()
	metadata := chaosapi.NewStoredMetadata(name, "uid-1", 1, now, now)
	view := chaosapi.NewScenarioView("chaosctl.dev/v1alpha1", "Scenario", *metadata, *chaosapi.NewScenarioSpec())
	if phase != "" {
		status := chaosapi.NewScenarioStatus()
		status.SetPhase(phase)
		if reason != "" {
			status.SetReason(reason)
		}
		view.SetStatus(*status)
	}
	return view
}

const badYAML = `apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata:
  name: bad
spec:
  tasks:
    - name: idle
      plugin: noop
      replicas: lots
`

func TestApplySendsTheYAMLAsWrittenAndReadsItsLines(t *testing.T) {
	var contentType, body string
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		contentType = r.Header.Get("Content-Type")
		text, _ := io.ReadAll(r.Body)
		body = string(text)
		writeJSON(w, 422, map[string]any{
			"code": "Invalid", "message": "invalid type: string \"lots\", expected u32",
			"field": "spec.tasks[0].replicas", "line": 9,
			"errors": []map[string]any{
				{"path": "spec.tasks[0].replicas", "line": 9, "message": "invalid type: string \"lots\", expected u32"},
				{"path": "metadata.name", "line": 4, "message": "not a valid name"},
			},
		})
	})
	_, err := client.Apply(context.Background(), []byte(badYAML))
	if contentType != "application/yaml" || body != badYAML {
		t.Errorf("sent %q:\n%s", contentType, body)
	}
	var apiErr *chaos.APIError
	if !errors.As(err, &apiErr) || !chaos.IsInvalid(err) || chaos.IsNotFound(err) {
		t.Fatalf("want a 422 *APIError, got %v", err)
	}
	if apiErr.Request != "POST /v1/scenarios" || apiErr.Field != "spec.tasks[0].replicas" || apiErr.Line != 9 {
		t.Errorf("got %+v", apiErr)
	}
	got := apiErr.FieldErrors()
	if len(got) != 2 || got[1] != (chaos.FieldError{Path: "metadata.name", Line: 4, Message: "not a valid name"}) {
		t.Errorf("FieldErrors: got %+v", got)
	}
	want := `chaos: POST /v1/scenarios: 422 Invalid: spec.tasks[0].replicas (line 9): invalid type: string "lots", expected u32 (and 1 more)`
	if err.Error() != want {
		t.Errorf("Error():\n got %s\nwant %s", err, want)
	}
}

func TestOneProblemIsAFieldError(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 422, map[string]any{"code": "Invalid", "message": "invalid YAML: bad indent", "line": 3})
	})
	_, err := client.Apply(context.Background(), []byte("x: 1"))
	apiErr, _ := chaos.AsAPIError(err)
	if apiErr == nil {
		t.Fatalf("want an *APIError, got %v", err)
	}
	got := apiErr.FieldErrors()
	if len(got) != 1 || got[0] != (chaos.FieldError{Line: 3, Message: "invalid YAML: bad indent"}) {
		t.Errorf("FieldErrors: got %+v", got)
	}
}

func TestGeneratedCallsGiveAPIErrors(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete: // a status the document does not list, without a body
			w.WriteHeader(http.StatusMethodNotAllowed)
		case strings.HasSuffix(r.URL.Path, "/report"): // not an error body
			http.Error(w, "Invalid URL: Invalid UTF-8 in `name`", http.StatusBadRequest)
		default:
			writeJSON(w, 404, map[string]any{"code": "NotFound", "message": "no scenario x"})
		}
	})
	ctx := context.Background()
	_, err := chaos.Result(client.API.ScenariosAPI.GetScenario(ctx, "x").Execute())
	if apiErr, ok := chaos.AsAPIError(err); !ok || !chaos.IsNotFound(err) || apiErr.Code != "NotFound" ||
		err.Error() != "chaos: GET /v1/scenarios/x: 404 NotFound: no scenario x" {
		t.Errorf("a 404: got %#v", err)
	}
	_, err = chaos.Result(client.API.ClusterAPI.UncordonWorker(ctx, "w").Execute())
	if apiErr, ok := chaos.AsAPIError(err); !ok || apiErr.Status != 405 || apiErr.Code != "" || apiErr.Message != "Method Not Allowed" {
		t.Errorf("an empty 405: got %#v", err)
	}
	_, err = client.Report(ctx, "x")
	if apiErr, ok := chaos.AsAPIError(err); !ok || !chaos.IsBadRequest(err) || apiErr.Message != "Invalid URL: Invalid UTF-8 in `name`" {
		t.Errorf("a text 400: got %#v", err)
	}
}

func TestTooManyRequestsExposesRetryAfter(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 429, map[string]any{"code": "TooManyRequests", "message": "slow down"})
	})
	_, err := chaos.Result(client.API.ClusterAPI.ListWorkers(context.Background()).Execute())
	if wait, ok := chaos.RetryAfter(err); !ok || wait != 7*time.Second || !chaos.IsTooManyRequests(err) {
		t.Errorf("got %v, %v from %v", wait, ok, err)
	}
}

func TestRateLimitRetryWaitsOutA429(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		text, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, r.Method+" "+string(text))
		if len(bodies)%2 == 1 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, map[string]any{"code": "TooManyRequests", "message": "slow down"})
			return
		}
		if r.Method == http.MethodPost {
			writeJSON(w, 201, chaosapi.NewApplyResponse(chaosapi.APPLYRESULT_CREATED, *scenarioView("s", "", "")))
			return
		}
		writeJSON(w, 200, map[string]any{"items": []any{}})
	}, chaos.WithRateLimitRetry(5*time.Second))
	ctx := context.Background()
	if _, err := chaos.Result(client.API.ClusterAPI.ListWorkers(ctx).Execute()); err != nil {
		t.Errorf("a generated call: %v", err)
	}
	// The body is sent again whole.
	if _, err := client.Apply(ctx, []byte(badYAML)); err != nil {
		t.Errorf("Apply: %v", err)
	}
	want := []string{"GET ", "GET ", "POST " + badYAML, "POST " + badYAML}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("got requests %q, want %q", bodies, want)
	}
}

func TestRateLimitRetryGivesUpAfterItsWait(t *testing.T) {
	calls := 0
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Retry-After", "2")
		writeJSON(w, 429, map[string]any{"code": "TooManyRequests", "message": "slow down"})
	}, chaos.WithRateLimitRetry(time.Second))
	_, err := chaos.Result(client.API.ClusterAPI.ListWorkers(context.Background()).Execute())
	if !chaos.IsTooManyRequests(err) || calls != 1 {
		t.Errorf("a wait longer than allowed: got %v after %d calls, want the 429 after 1", err, calls)
	}
}

func TestRequestsCarryTokenUserAgentAndPrefix(t *testing.T) {
	var got *http.Request
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		writeJSON(w, 200, map[string]any{"items": []any{}, "last": 0})
	}))
	defer server.Close()
	pool := x509.NewCertPool()
	pool.AddCert(server.Certificate())
	client, err := chaos.NewClient(server.URL+"/chaos/", chaos.WithCAPool(pool), chaos.WithToken("s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = chaos.Result(client.API.ScenariosAPI.ListEvents(context.Background(), "a/b c?").After(9223372036854775807).Limit(5).Execute())
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/chaos/v1/scenarios/a%2Fb%20c%3F/events" {
		t.Errorf("path: got %s", got.URL.EscapedPath())
	}
	if got.URL.Query().Get("after") != "9223372036854775807" || got.URL.Query().Get("limit") != "5" {
		t.Errorf("query: got %s", got.URL.RawQuery)
	}
	if got.Header.Get("Authorization") != "Bearer s3cret" || got.Header.Get("User-Agent") != "chaos-sdk-go/"+chaos.Version {
		t.Errorf("headers: got %v", got.Header)
	}
}

func TestAvailabilityParams(t *testing.T) {
	var query map[string][]string
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Query()
		writeJSON(w, 200, map[string]any{"from": 0, "to": 0, "step": 30, "muted": []any{}, "probes": []any{}})
	})
	from := time.Unix(1700000000, 0)
	params := chaos.RangeParams{From: from, Step: 30 * time.Second, Group: "synthetic", MuteDowntimeTypes: []chaosapi.DowntimeType{}}
	if _, err := client.Availability(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"from": {"1700000000"}, "step": {"30"}, "group": {"synthetic"}, "muteDowntimeTypes": {""}}
	if fmt.Sprint(query) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", query, want)
	}
}

func TestTLSIsVerified(t *testing.T) {
	server := httptest.NewTLSServer(http.NotFoundHandler())
	defer server.Close()
	client, err := chaos.NewClient(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chaos.ResultBody(client.API.HealthAPI.Healthz(context.Background()).Execute())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server signed by an unknown CA: got %v", err)
	}
	// The helpers retry a server they cannot reach, but not one whose certificate is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Apply(ctx, []byte("x: 1")); err == nil || !strings.Contains(err.Error(), "certificate") || ctx.Err() != nil {
		t.Errorf("Apply to a server signed by an unknown CA: got %v", err)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := chaos.NewClient(server.URL, chaos.WithHTTPClient(insecure)); err == nil {
		t.Error("a client that skips verification is refused")
	}
}

func TestServerURLs(t *testing.T) {
	for server, ok := range map[string]bool{
		"https://chaos.example:8443":  true,
		"http://127.0.0.1:8080/":      true,
		"https://proxy.example/chaos": true,
		"chaos.example:8443":          false,
		"ftp://chaos.example":         false,
		"https://chaos.example/?x=1":  false,
	} {
		_, err := chaos.NewClient(server)
		if (err == nil) != ok {
			t.Errorf("NewClient(%q): got %v", server, err)
		}
	}
}

// TestPortRefTakesANumberOrAName: the generated PortRef is post-processed by
// scripts/sdk-generate.sh (its validator call removed); exactly one branch must still match.
func TestPortRefTakesANumberOrAName(t *testing.T) {
	var byNumber, byName chaosapi.PortRef
	if err := json.Unmarshal([]byte(`8080`), &byNumber); err != nil || byNumber.Int32 == nil || *byNumber.Int32 != 8080 || byNumber.String != nil {
		t.Errorf("8080: got %+v, %v", byNumber, err)
	}
	if err := json.Unmarshal([]byte(`"http"`), &byName); err != nil || byName.String == nil || *byName.String != "http" || byName.Int32 != nil {
		t.Errorf(`"http": got %+v, %v`, byName, err)
	}
	for _, bad := range []string{`true`, `1.5`, `{}`, `[80]`} {
		var port chaosapi.PortRef
		if err := json.Unmarshal([]byte(bad), &port); err == nil {
			t.Errorf("%s: accepted as %+v", bad, port.GetActualInstanceValue())
		}
	}
	// As the field of a model, both ways.
	var target chaosapi.ProxyTarget
	text := `{"namespace":"smoke-mini","name":"smoke-mini","port":80}`
	if err := json.Unmarshal([]byte(text), &target); err != nil || target.GetPort().GetActualInstanceValue() != int32(80) {
		t.Fatalf("a ProxyTarget: got %+v, %v", target, err)
	}
	if out, err := json.Marshal(target); err != nil || !strings.Contains(string(out), `"port":80`) {
		t.Errorf("marshalled back: got %s, %v", out, err)
	}
}

// journal serves a scenario's events endpoint from entries, which the test may append to.
type journal struct {
	mu      sync.Mutex
	entries []chaosapi.EventEntry
}

func entry(seq int64, kind string) chaosapi.EventEntry {
	return *chaosapi.NewEventEntry(time.Unix(seq/1_000_000_000, 0).UTC(), kind, seq)
}

func (j *journal) add(seq int64, kind string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, entry(seq, kind))
}

func (j *journal) serve(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	page := chaosapi.EventList{Items: []chaosapi.EventEntry{}, Last: after}
	for _, e := range j.entries { // sorted by seq, as etcd keys are
		if e.Seq > after && len(page.Items) < limit {
			page.Items = append(page.Items, e)
			page.Last = e.Seq
		}
	}
	writeJSON(w, 200, page)
}

func TestStreamEventsDeliversLateEntriesOnce(t *testing.T) {
	const second = 1_000_000_000 // in sequence numbers
	j := &journal{}
	base := int64(1_700_000_000) * second
	j.add(base+1*second, "a")
	j.add(base+3*second, "c")
	client := fakeServer(t, j.serve)
	var kinds []string
	opts := chaos.StreamOptions{Poll: 10 * time.Millisecond, Limit: 1, Lookback: 5 * time.Second}
	err := client.StreamEventsWith(context.Background(), "s", opts, func(e chaosapi.EventEntry) error {
		kinds = append(kinds, e.Kind)
		switch e.Kind {
		case "c": // an entry lands late, behind c
			j.mu.Lock()
			j.entries = []chaosapi.EventEntry{j.entries[0], entry(base+2*second, "b"), j.entries[1]}
			j.mu.Unlock()
		case "b":
			j.add(base+4*second, "d")
		case "d":
			return chaos.ErrStopStream
		}
		return nil
	})
	if err != nil || strings.Join(kinds, "") != "acbd" {
		t.Errorf("got %v, %v; want a c b d, each once", kinds, err)
	}
}

func TestStreamEventsEndsWithTheContext(t *testing.T) {
	client := fakeServer(t, (&journal{}).serve)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := client.StreamEvents(ctx, "s", func(chaosapi.EventEntry) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
}

func TestWaitForPhaseNamesTheLastPhase(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, scenarioView("s", chaosapi.SCENARIOPHASE_PENDING, "no worker reaches cluster x"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := client.WaitForPhase(ctx, "s", chaosapi.SCENARIOPHASE_RUNNING, 10*time.Millisecond)
	var phaseErr *chaos.PhaseError
	if !errors.As(err, &phaseErr) || phaseErr.Last != chaosapi.SCENARIOPHASE_PENDING || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	want := `chaos: scenario "s" is Pending, not Running (no worker reaches cluster x), when the wait ended: context deadline exceeded`
	if err.Error() != want {
		t.Errorf("Error():\n got %s\nwant %s", err, want)
	}
}

func TestWaitForPhaseStopsAtAFinalPhase(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, scenarioView("s", chaosapi.SCENARIOPHASE_STOPPED, ""))
	})
	_, err := client.WaitForPhase(context.Background(), "s", chaosapi.SCENARIOPHASE_RUNNING, time.Millisecond)
	var phaseErr *chaos.PhaseError
	if !errors.As(err, &phaseErr) || phaseErr.Last != chaosapi.SCENARIOPHASE_STOPPED || phaseErr.Err != nil {
		t.Errorf("got %v", err)
	}
}

func TestStopSendsTheReason(t *testing.T) {
	var body string
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		text, _ := io.ReadAll(r.Body)
		body = r.Method + " " + r.URL.Path + " " + strings.TrimSpace(string(text))
		writeJSON(w, 200, map[string]any{"name": "s", "result": "stopping"})
	})
	stopped, err := client.Stop(context.Background(), "s", "done")
	if err != nil || stopped.Result != chaosapi.ACTIONRESULT_STOPPING {
		t.Fatalf("got %+v, %v", stopped, err)
	}
	if body != `POST /v1/scenarios/s/stop {"reason":"done"}` {
		t.Errorf("sent %s", body)
	}
}

func TestRetriesGiveUpWithTheLastError(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, map[string]any{"code": "Unavailable", "message": "etcd is unavailable"})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := client.Report(ctx, "s")
	if !chaos.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
}
