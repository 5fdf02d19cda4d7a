package chaos_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	chaos "github.com/chaos-orchestrator/sdk-go"
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

func TestErrorBodyBecomesAnAPIError(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 422, map[string]any{
			"code": "Invalid", "message": "must be between 1 and 100000",
			"field": "spec.tasks[0].replicas", "line": 10,
			"errors": []map[string]any{
				{"path": "spec.tasks[0].replicas", "line": 10, "message": "must be between 1 and 100000"},
				{"path": "metadata.name", "line": 4, "message": "not a valid name"},
			},
		})
	})
	_, err := client.ApplyScenario(context.Background(), []byte("x: 1"))
	var apiErr *chaos.APIError
	if !errors.As(err, &apiErr) || !chaos.IsInvalid(err) || chaos.IsNotFound(err) {
		t.Fatalf("want a 422 *APIError, got %v", err)
	}
	if apiErr.Operation != "applyScenario" || apiErr.Field != "spec.tasks[0].replicas" || apiErr.Line != 10 {
		t.Errorf("got %+v", apiErr)
	}
	if got := apiErr.FieldErrors(); len(got) != 2 || got[1] != (chaos.SpecError{Path: "metadata.name", Line: 4, Message: "not a valid name"}) {
		t.Errorf("FieldErrors: got %+v", got)
	}
	want := "chaos: applyScenario: 422 Invalid: spec.tasks[0].replicas (line 10): must be between 1 and 100000 (and 1 more)"
	if err.Error() != want {
		t.Errorf("Error():\n got %s\nwant %s", err, want)
	}
}

func TestOneProblemIsAFieldError(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 422, map[string]any{"code": "Invalid", "message": "invalid YAML: bad indent", "line": 3})
	})
	_, err := client.ApplyScenario(context.Background(), []byte("x: 1"))
	apiErr, _ := chaos.AsAPIError(err)
	if apiErr == nil {
		t.Fatalf("want an *APIError, got %v", err)
	}
	got := apiErr.FieldErrors()
	if len(got) != 1 || got[0] != (chaos.SpecError{Line: 3, Message: "invalid YAML: bad indent"}) {
		t.Errorf("FieldErrors: got %+v", got)
	}
}

func TestAnswersThatAreNotErrorBodies(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		http.Error(w, "Invalid URL: Invalid UTF-8 in `name`", http.StatusBadRequest)
	})
	_, err := client.UncordonWorker(context.Background(), "w")
	if apiErr, ok := chaos.AsAPIError(err); !ok || apiErr.Status != 405 || apiErr.Code != "" || apiErr.Message != "Method Not Allowed" {
		t.Errorf("an empty 405: got %#v", err)
	}
	_, err = client.GetScenario(context.Background(), "x")
	if apiErr, ok := chaos.AsAPIError(err); !ok || !chaos.IsBadRequest(err) || apiErr.Message != "Invalid URL: Invalid UTF-8 in `name`" {
		t.Errorf("a text 400: got %#v", err)
	}
}

func TestTooManyRequestsExposesRetryAfter(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 429, map[string]any{"code": "TooManyRequests", "message": "slow down"})
	})
	_, err := client.ListWorkers(context.Background())
	if wait, ok := chaos.RetryAfter(err); !ok || wait != 7*time.Second || !chaos.IsTooManyRequests(err) {
		t.Errorf("got %v, %v from %v", wait, ok, err)
	}
}

func TestRateLimitRetryWaitsOutA429(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, map[string]any{"code": "TooManyRequests", "message": "slow down"})
			return
		}
		writeJSON(w, 200, map[string]any{"items": []any{}})
	}, chaos.WithRateLimitRetry(5*time.Second))
	if _, err := client.ListWorkers(context.Background()); err != nil || calls != 2 {
		t.Errorf("got %v after %d calls, want success after 2", err, calls)
	}
}

func TestRequestsCarryTokenEscapedPathsAndQueries(t *testing.T) {
	var got *http.Request
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		writeJSON(w, 200, map[string]any{"items": []any{}, "last": 0})
	}, chaos.WithToken("s3cret"))
	_, err := client.ListEvents(context.Background(), "a/b c?", chaos.EventsParams{After: 18446744073709551615, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/v1/scenarios/a%2Fb%20c%3F/events" {
		t.Errorf("path: got %s", got.URL.EscapedPath())
	}
	if got.URL.Query().Get("after") != "18446744073709551615" || got.URL.Query().Get("limit") != "5" {
		t.Errorf("query: got %s", got.URL.RawQuery)
	}
	if got.Header.Get("Authorization") != "Bearer s3cret" || !strings.HasPrefix(got.Header.Get("User-Agent"), "chaos-sdk-go/") {
		t.Errorf("headers: got %v", got.Header)
	}
}

func TestEmptyPathParametersAreRefused(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request expected, got %s", r.URL)
	})
	for _, name := range []string{"", ".", ".."} {
		if _, err := client.GetScenario(context.Background(), name); err == nil || !strings.Contains(err.Error(), "not a valid name") {
			t.Errorf("GetScenario(%q): got %v", name, err)
		}
	}
}

func TestRangeParamsQuery(t *testing.T) {
	var query map[string][]string
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Query()
		writeJSON(w, 200, map[string]any{"from": 0, "to": 0, "step": 300, "muted": []any{}, "probes": []any{}})
	})
	from := time.Unix(1700000000, 0)
	params := chaos.RangeParams{From: from, Step: 30 * time.Second, Group: "synthetic", MuteDowntimeTypes: []chaos.DowntimeType{}}
	if _, err := client.GetAvailabilityRange(context.Background(), params); err != nil {
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
	if _, err := client.Healthz(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server signed by an unknown CA: got %v", err)
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

// journal serves a scenario's events endpoint from entries, which the test may append to.
type journal struct {
	mu      sync.Mutex
	entries []chaos.EventEntry
}

func (j *journal) add(seq uint64, kind string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, chaos.EventEntry{Seq: seq, JournalEvent: chaos.JournalEvent{Kind: kind, Time: time.Now()}})
}

func (j *journal) serve(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	page := chaos.EventList{Items: []chaos.EventEntry{}, Last: after}
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
	base := uint64(1_700_000_000) * second
	j.add(base+1*second, "a")
	j.add(base+3*second, "c")
	client := fakeServer(t, j.serve)
	var kinds []string
	opts := chaos.StreamOptions{Poll: 10 * time.Millisecond, Limit: 1, Lookback: 5 * time.Second}
	err := client.StreamEventsWith(context.Background(), "s", opts, func(e chaos.EventEntry) error {
		kinds = append(kinds, e.Kind)
		switch e.Kind {
		case "c": // an entry lands late, behind c
			j.mu.Lock()
			late := chaos.EventEntry{Seq: base + 2*second, JournalEvent: chaos.JournalEvent{Kind: "b"}}
			j.entries = []chaos.EventEntry{j.entries[0], late, j.entries[1]}
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
	err := client.StreamEvents(ctx, "s", func(chaos.EventEntry) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
}

func TestWaitForPhaseNamesTheLastPhase(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"metadata": map[string]any{"name": "s"}, "status": map[string]any{"phase": "Pending", "reason": "no worker reaches cluster x"}})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := client.WaitForPhase(ctx, "s", chaos.PhaseRunning, 10*time.Millisecond)
	var phaseErr *chaos.PhaseError
	if !errors.As(err, &phaseErr) || phaseErr.Last != chaos.PhasePending || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	want := `chaos: scenario "s" is Pending, not Running (no worker reaches cluster x), when the wait ended: context deadline exceeded`
	if err.Error() != want {
		t.Errorf("Error():\n got %s\nwant %s", err, want)
	}
}

func TestWaitForPhaseStopsAtAFinalPhase(t *testing.T) {
	client := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": map[string]any{"phase": "Stopped"}})
	})
	_, err := client.WaitForPhase(context.Background(), "s", chaos.PhaseRunning, time.Millisecond)
	var phaseErr *chaos.PhaseError
	if !errors.As(err, &phaseErr) || phaseErr.Last != chaos.PhaseStopped || phaseErr.Err != nil {
		t.Errorf("got %v", err)
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
