package chaos

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"chaosctl.dev/sdk/go/chaosapi"
)

// Helpers for test suites that drive scenarios. Unlike calls of the generated client, they
// retry what is safe to retry — a server restarting or unreachable, etcd unavailable, a rate
// limit — until their context ends, and then return the last error. Every refusal is an
// *APIError.

// ApplyFile applies the scenario in the YAML or JSON file at path; see Apply.
func (c *Client) ApplyFile(ctx context.Context, path string) (*chaosapi.ApplyResponse, error) {
	yaml, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return c.Apply(ctx, yaml)
}

// Apply creates a scenario, or updates it when its spec changed: one scenario, YAML or JSON,
// sent as written, so that a refusal names the lines of this text (the generated ApplyScenario
// takes a chaosapi.Scenario and sends it as JSON of its own making). An invalid scenario is an
// *APIError with status 422; see APIError.FieldErrors. Transient failures are retried: an apply
// of the same spec again changes nothing, though it then answers unchanged.
func (c *Client) Apply(ctx context.Context, yaml []byte) (*chaosapi.ApplyResponse, error) {
	return c.apply(ctx, yaml, "/v1/scenarios")
}

// DryRun validates a scenario as Apply does and stores nothing: the answer's Result is
// "dry-run", and its Targets say which pods each fault step would pick now.
func (c *Client) DryRun(ctx context.Context, yaml []byte) (*chaosapi.ApplyResponse, error) {
	return c.apply(ctx, yaml, "/v1/scenarios?dryRun=true")
}

func (c *Client) apply(ctx context.Context, yaml []byte, path string) (*chaosapi.ApplyResponse, error) {
	var out *chaosapi.ApplyResponse
	err := retrying(ctx, func() (err error) {
		out, err = c.applyOnce(ctx, yaml, path)
		return err
	})
	return out, err
}

// applyOnce sends POST to path with the generated client's configuration: its http.Client,
// default headers (the token) and user agent.
func (c *Client) applyOnce(ctx context.Context, yaml []byte, path string) (*chaosapi.ApplyResponse, error) {
	cfg := c.API.GetConfig()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+path, bytes.NewReader(yaml))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	for header, value := range cfg.DefaultHeader {
		req.Header.Set(header, value)
	}
	req.Header.Set("User-Agent", cfg.UserAgent)
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer drain(resp)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("chaos: POST %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(resp, body)
	}
	var out chaosapi.ApplyResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("chaos: POST %s: reading the answer: %w", path, err)
	}
	return &out, nil
}

// Stop asks the controller to stop a scenario; reason, when not empty, is shown in its status.
// The result is stopping, or already-stopping (also when a retry follows a request that got
// through). Transient failures are retried.
func (c *Client) Stop(ctx context.Context, name, reason string) (*chaosapi.ActionResponse, error) {
	req := c.API.ScenariosAPI.StopScenario(ctx, name)
	if reason != "" {
		var body chaosapi.StopBody
		body.SetReason(reason)
		req = req.StopBody(body)
	}
	var out *chaosapi.ActionResponse
	err := retrying(ctx, func() (err error) {
		out, err = Result(req.Execute())
		return err
	})
	return out, err
}

// Report returns a scenario's report, retrying transient failures.
func (c *Client) Report(ctx context.Context, name string) (*chaosapi.Report, error) {
	var out *chaosapi.Report
	err := retrying(ctx, func() (err error) {
		out, err = Result(c.API.ScenariosAPI.GetReport(ctx, name).Execute())
		return err
	})
	return out, err
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
	MuteDowntimeTypes []chaosapi.DowntimeType
}

// Availability returns, per probe and step, the seconds up, down, unknown, muted and without
// data, with the availability and a total. Transient failures are retried.
func (c *Client) Availability(ctx context.Context, params RangeParams) (*chaosapi.AvailabilityRange, error) {
	req := c.API.AvailabilityAPI.GetAvailabilityRange(ctx)
	if !params.From.IsZero() {
		req = req.From(strconv.FormatInt(params.From.Unix(), 10))
	}
	if !params.To.IsZero() {
		req = req.To(strconv.FormatInt(params.To.Unix(), 10))
	}
	if params.Step > 0 {
		req = req.Step(int64(params.Step / time.Second))
	}
	if params.Group != "" {
		req = req.Group(params.Group)
	}
	if params.Probe != "" {
		req = req.Probe(params.Probe)
	}
	if params.Scenario != "" {
		req = req.Scenario(params.Scenario)
	}
	if params.MuteDowntimeTypes != nil {
		types := make([]string, len(params.MuteDowntimeTypes))
		for i, t := range params.MuteDowntimeTypes {
			types[i] = string(t)
		}
		req = req.MuteDowntimeTypes(strings.Join(types, ","))
	}
	var out *chaosapi.AvailabilityRange
	err := retrying(ctx, func() (err error) {
		out, err = Result(req.Execute())
		return err
	})
	return out, err
}

// PhaseError says a scenario did not reach the phase waited for.
type PhaseError struct {
	Scenario string
	// Want is the phase waited for; Last the last one seen (empty if none was).
	Want, Last chaosapi.ScenarioPhase
	// Reason is the scenario's status reason when it was last seen.
	Reason string
	// Err is why the wait ended: the context's error, or nil when the scenario reached a
	// phase it does not leave (Stopped, Failed).
	Err error
}

// Error says which phase was last seen.
func (e *PhaseError) Error() string {
	if e.Last == "" {
		return fmt.Sprintf("chaos: scenario %q has no phase yet, while waiting for %s: %v", e.Scenario, e.Want, e.Err)
	}
	msg := fmt.Sprintf("chaos: scenario %q is %s, not %s", e.Scenario, e.Last, e.Want)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	if e.Err != nil {
		return msg + ", when the wait ended: " + e.Err.Error()
	}
	return msg + ", and will not leave " + string(e.Last)
}

// Unwrap returns why the wait ended.
func (e *PhaseError) Unwrap() error { return e.Err }

// finalPhase reports whether a scenario never leaves phase.
func finalPhase(phase chaosapi.ScenarioPhase) bool {
	return phase == chaosapi.SCENARIOPHASE_STOPPED || phase == chaosapi.SCENARIOPHASE_FAILED
}

// WaitForPhase polls a scenario every poll (1s when poll is 0) until it is in phase, and
// returns it. It returns a *PhaseError naming the last phase seen when ctx ends first, or at
// once when the scenario reaches a phase it never leaves; other errors (a 404: the scenario
// is gone) at once too. Transient failures are retried.
func (c *Client) WaitForPhase(ctx context.Context, name string, phase chaosapi.ScenarioPhase, poll time.Duration) (*chaosapi.ScenarioView, error) {
	if poll <= 0 {
		poll = time.Second
	}
	wait := &PhaseError{Scenario: name, Want: phase}
	for {
		view, err := Result(c.API.ScenariosAPI.GetScenario(ctx, name).Execute())
		if err == nil {
			if status := view.Status; status != nil {
				wait.Last, wait.Reason = status.GetPhase(), status.GetReason()
			}
			if wait.Last == phase {
				return view, nil
			}
			if finalPhase(wait.Last) {
				return view, wait
			}
		} else if ctx.Err() == nil && !transient(err) {
			return nil, err
		}
		if err := sleep(ctx, poll); err != nil {
			wait.Err = err
			return nil, wait
		}
	}
}

// ErrStopStream, returned by the function given to StreamEvents, ends the stream without an
// error.
var ErrStopStream = errors.New("chaos: stop the stream")

// StreamOptions tunes StreamEventsWith. Zero fields take the defaults.
type StreamOptions struct {
	// After starts the stream after this sequence number; 0 starts at the journal's beginning.
	After int64
	// Poll is how often the journal is read once caught up; 1s by default.
	Poll time.Duration
	// Limit is the page size; 1000 by default.
	Limit int32
	// Lookback is how far back (in the time the sequence numbers encode) each read starts
	// before the newest entry seen; 10s by default. Sequence numbers are taken by each worker
	// when it writes, so an entry can land after a newer one from another worker: reading a
	// little back, and skipping what was delivered, catches it.
	Lookback time.Duration
}

// StreamEvents calls fn with each entry of a scenario's journal, from its beginning, as it
// grows, until ctx ends (it then returns ctx's error), fn returns an error (returned, except
// ErrStopStream, which ends the stream with nil), or the scenario is gone (a 404 *APIError).
// Entries come once each, oldest first, except that a late entry (see StreamOptions.Lookback)
// comes after newer ones. Transient failures are retried.
func (c *Client) StreamEvents(ctx context.Context, name string, fn func(chaosapi.EventEntry) error) error {
	return c.StreamEventsWith(ctx, name, StreamOptions{}, fn)
}

// StreamEventsWith is StreamEvents with options.
func (c *Client) StreamEventsWith(ctx context.Context, name string, opts StreamOptions, fn func(chaosapi.EventEntry) error) error {
	s := newEventStream(opts)
	for {
		err := s.readNew(ctx, c, name, fn)
		var stop *callbackError
		if errors.As(err, &stop) {
			if errors.Is(stop.err, ErrStopStream) {
				return nil
			}
			return stop.err
		}
		if err != nil && (ctx.Err() != nil || !transient(err)) {
			return err
		}
		if err := sleep(ctx, s.opts.Poll); err != nil {
			return err
		}
	}
}

// eventStream is where a stream stands: the newest entry delivered, and those delivered
// within the lookback window of it (they are read again).
type eventStream struct {
	opts     StreamOptions
	lookback int64 // opts.Lookback in sequence numbers
	newest   int64
	seen     map[int64]bool
}

// seqPerMicrosecond: a sequence number is microseconds since the epoch × 1000 + a worker tag.
const seqPerMicrosecond = 1000

func newEventStream(opts StreamOptions) *eventStream {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Limit <= 0 {
		opts.Limit = 1000
	}
	if opts.Lookback <= 0 {
		opts.Lookback = 10 * time.Second
	}
	return &eventStream{
		opts:     opts,
		lookback: opts.Lookback.Microseconds() * seqPerMicrosecond,
		newest:   opts.After,
		seen:     map[int64]bool{},
	}
}

// start is the sequence number to read after: the lookback window before the newest entry.
func (s *eventStream) start() int64 {
	from := s.opts.After
	if s.newest-s.lookback > from {
		from = s.newest - s.lookback
	}
	return from
}

// readNew reads the journal from start() to its end and delivers what was not delivered.
func (s *eventStream) readNew(ctx context.Context, c *Client, name string, fn func(chaosapi.EventEntry) error) error {
	after := s.start()
	for {
		page, err := Result(c.API.ScenariosAPI.ListEvents(ctx, name).After(after).Limit(s.opts.Limit).Execute())
		if err != nil {
			return err
		}
		for _, entry := range page.Items {
			if err := s.deliver(entry, fn); err != nil {
				return err
			}
		}
		if len(page.Items) < int(s.opts.Limit) || page.Last <= after {
			break
		}
		after = page.Last
	}
	s.forgetBefore(s.start())
	return nil
}

func (s *eventStream) deliver(entry chaosapi.EventEntry, fn func(chaosapi.EventEntry) error) error {
	if entry.Seq <= s.opts.After || s.seen[entry.Seq] {
		return nil
	}
	if err := fn(entry); err != nil {
		return &callbackError{err}
	}
	s.seen[entry.Seq] = true
	if entry.Seq > s.newest {
		s.newest = entry.Seq
	}
	return nil
}

// callbackError is an error of the stream's function, never retried.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// forgetBefore drops the delivered entries at or before seq: no read returns them again.
func (s *eventStream) forgetBefore(seq int64) {
	for delivered := range s.seen {
		if delivered <= seq {
			delete(s.seen, delivered)
		}
	}
}

// ---- Retries -------------------------------------------------------------------------------

// transient reports whether err may go away by itself: the server unreachable or restarting,
// etcd unavailable to it, a rate limit.
func transient(err error) bool {
	if apiErr, ok := AsAPIError(err); ok {
		switch apiErr.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
			http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var urlErr *url.Error
	return errors.As(err, &urlErr) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) && !certificateRefused(err)
}

// certificateRefused reports whether err is the server's certificate failing verification:
// that stays so until someone changes the certificate or the CA trusted.
func certificateRefused(err error) bool {
	var unknownAuthority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	return errors.As(err, &unknownAuthority) || errors.As(err, &invalid) || errors.As(err, &hostname)
}

// retryError is the last error of a retry loop that ctx ended: errors.As finds the last
// error, errors.Is the context's.
type retryError struct {
	last, ctxErr error
}

func (e *retryError) Error() string {
	return fmt.Sprintf("%v (gave up retrying: %v)", e.last, e.ctxErr)
}

func (e *retryError) Unwrap() error { return e.last }

func (e *retryError) Is(target error) bool { return target == e.ctxErr }

// retrying calls fn until it succeeds or fails for good, backing off between transient
// failures (as long as Retry-After asks, when it does), until ctx ends.
func retrying(ctx context.Context, fn func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		wait := backoff
		if asked, ok := RetryAfter(err); ok {
			wait = asked
		}
		if ctxErr := sleep(ctx, wait); ctxErr != nil {
			return &retryError{last: err, ctxErr: ctxErr}
		}
		if backoff *= 2; backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}

// sleep waits d, or until ctx ends (then returns its error).
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
