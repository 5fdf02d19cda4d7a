package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Helpers for test suites that drive scenarios. Unlike the methods named after operations,
// they retry what is safe to retry — a server restarting or unreachable, etcd unavailable, a
// rate limit — until their context ends, and then return the last error.

// ApplyFile applies the scenario in the YAML or JSON file at path; see Apply.
func (c *Client) ApplyFile(ctx context.Context, path string) (*ApplyResponse, error) {
	yaml, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return c.Apply(ctx, yaml)
}

// Apply applies one scenario, YAML or JSON, retrying transient failures (an apply of the same
// spec again changes nothing, so a retry is safe: it may then answer ApplyUnchanged). An
// invalid scenario is an *APIError; see APIError.FieldErrors.
func (c *Client) Apply(ctx context.Context, yaml []byte) (*ApplyResponse, error) {
	var out *ApplyResponse
	err := retrying(ctx, func() (err error) {
		out, err = c.ApplyScenario(ctx, yaml)
		return err
	})
	return out, err
}

// Report returns a scenario's report, retrying transient failures.
func (c *Client) Report(ctx context.Context, name string) (*Report, error) {
	var out *Report
	err := retrying(ctx, func() (err error) {
		out, err = c.GetReport(ctx, name)
		return err
	})
	return out, err
}

// Availability returns an availability range, retrying transient failures. Use
// AvailabilityRange.Probe to pick one probe's steps and total.
func (c *Client) Availability(ctx context.Context, params RangeParams) (*AvailabilityRange, error) {
	var out *AvailabilityRange
	err := retrying(ctx, func() (err error) {
		out, err = c.GetAvailabilityRange(ctx, params)
		return err
	})
	return out, err
}

// PhaseError says a scenario did not reach the phase waited for.
type PhaseError struct {
	Scenario string
	// Want is the phase waited for; Last the last one seen (empty if none was).
	Want, Last ScenarioPhase
	// Reason is the scenario's status reason when it was last seen.
	Reason string
	// Err is why the wait ended: the context's error, or nil when the scenario reached a
	// phase it does not leave (Stopped, Failed).
	Err error
}

// Error says which phase was last seen.
func (e *PhaseError) Error() string {
	if e.Last == "" {
		return fmt.Sprintf("chaos: scenario %q never answered while waiting for %s: %v", e.Scenario, e.Want, e.Err)
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
func finalPhase(phase ScenarioPhase) bool {
	return phase == PhaseStopped || phase == PhaseFailed
}

// WaitForPhase polls a scenario every poll (1s when poll is 0) until it is in phase, and
// returns it. It returns a *PhaseError naming the last phase seen when ctx ends first, or at
// once when the scenario reaches a phase it never leaves; other errors (a 404: the scenario
// is gone) at once too. Transient failures are retried.
func (c *Client) WaitForPhase(ctx context.Context, name string, phase ScenarioPhase, poll time.Duration) (*ScenarioView, error) {
	if poll <= 0 {
		poll = time.Second
	}
	wait := &PhaseError{Scenario: name, Want: phase}
	for {
		view, err := c.GetScenario(ctx, name)
		if err == nil {
			wait.Last, wait.Reason = view.Status.Phase, view.Status.Reason
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
	After uint64
	// Poll is how often the journal is read once caught up; 1s by default.
	Poll time.Duration
	// Limit is the page size; 1000 by default.
	Limit int
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
func (c *Client) StreamEvents(ctx context.Context, name string, fn func(EventEntry) error) error {
	return c.StreamEventsWith(ctx, name, StreamOptions{}, fn)
}

// StreamEventsWith is StreamEvents with options.
func (c *Client) StreamEventsWith(ctx context.Context, name string, opts StreamOptions, fn func(EventEntry) error) error {
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
	lookback uint64 // opts.Lookback in sequence numbers
	newest   uint64
	seen     map[uint64]bool
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
		lookback: uint64(opts.Lookback.Microseconds()) * seqPerMicrosecond,
		newest:   opts.After,
		seen:     map[uint64]bool{},
	}
}

// start is the sequence number to read after: the lookback window before the newest entry.
func (s *eventStream) start() uint64 {
	from := s.opts.After
	if s.newest > s.lookback && s.newest-s.lookback > from {
		from = s.newest - s.lookback
	}
	return from
}

// readNew reads the journal from start() to its end and delivers what was not delivered.
func (s *eventStream) readNew(ctx context.Context, c *Client, name string, fn func(EventEntry) error) error {
	after := s.start()
	for {
		page, err := c.ListEvents(ctx, name, EventsParams{After: after, Limit: s.opts.Limit})
		if err != nil {
			return err
		}
		for _, entry := range page.Items {
			if err := s.deliver(entry, fn); err != nil {
				return err
			}
		}
		if len(page.Items) < s.opts.Limit || page.Last <= after {
			break
		}
		after = page.Last
	}
	s.forgetBefore(s.start())
	return nil
}

func (s *eventStream) deliver(entry EventEntry, fn func(EventEntry) error) error {
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
func (s *eventStream) forgetBefore(seq uint64) {
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
		!errors.Is(err, context.DeadlineExceeded)
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
