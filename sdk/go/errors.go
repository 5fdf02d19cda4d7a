package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorBody is the body of every error answer of the API.
type ErrorBody struct {
	// Code is the stable, machine-readable reason: Invalid, BadRequest, NotFound, Conflict,
	// Unauthenticated, Forbidden, TooManyRequests, PayloadTooLarge, Unavailable, Internal.
	Code string `json:"code"`
	// Message says what is wrong, for people; for an invalid scenario, the first problem.
	Message string `json:"message"`
	// Field is the path of the field at fault (spec.volumes.step.min), when one is.
	Field string `json:"field,omitempty"`
	// Line is the 1-based line of that field in the submitted YAML or JSON; 0 when unknown.
	Line int `json:"line,omitempty"`
	// Errors lists every problem found, when there are several (when there is one, it is the
	// Field, Line and Message above; see APIError.FieldErrors).
	Errors []SpecError `json:"errors,omitempty"`
}

// SpecError is one thing wrong with a submitted document (a scenario, a Downtime, a token
// request).
type SpecError struct {
	// Path is the field's path (spec.tasks[0].replicas); empty for the document as a whole.
	Path string `json:"path"`
	// Line is the 1-based line in the YAML or JSON text; 0 when unknown.
	Line int `json:"line,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats the error as path (line N): message.
func (e SpecError) String() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
	}
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(line %d)", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// APIError is an answer of the API other than 2xx. Every method of [Client] returns one for
// such an answer; find it with errors.As or [AsAPIError].
type APIError struct {
	// Operation is the id of the operation that failed (getScenario).
	Operation string
	// Status is the HTTP status code.
	Status int
	// ErrorBody is what the server said. An answer that was not an ErrorBody (a proxy's page,
	// a 405 without a body) leaves Code empty and puts its text, or the status text, in Message.
	ErrorBody
	// RetryAfter is how long the server asked to wait (the Retry-After header of a 429 or
	// 503); 0 when it did not say.
	RetryAfter time.Duration
}

// Error formats the error as chaos: OPERATION: STATUS CODE: [FIELD (line N): ]MESSAGE.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %s: %d", e.Operation, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": ")
	b.WriteString(SpecError{Path: e.Field, Line: e.Line, Message: e.Message}.String())
	if n := len(e.Errors); n > 1 {
		fmt.Fprintf(&b, " (and %d more)", n-1)
	}
	return b.String()
}

// FieldErrors returns every problem of an invalid document, the first one included, whether
// the server listed several (in Errors) or gave the only one as Field, Line and Message. It
// returns nil for other errors.
func (e *APIError) FieldErrors() []SpecError {
	if len(e.Errors) > 0 {
		return e.Errors
	}
	if e.Code != "Invalid" {
		return nil
	}
	return []SpecError{{Path: e.Field, Line: e.Line, Message: e.Message}}
}

// newAPIError reads an error answer.
func newAPIError(op Operation, resp *http.Response) *APIError {
	apiErr := &APIError{Operation: op.ID, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body ErrorBody
	if err := json.Unmarshal(text, &body); err == nil && body.Code != "" {
		apiErr.ErrorBody = body
		return apiErr
	}
	apiErr.Message = strings.TrimSpace(string(text))
	if apiErr.Message == "" {
		apiErr.Message = http.StatusText(resp.StatusCode)
	}
	return apiErr
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(header http.Header) time.Duration {
	value := strings.TrimSpace(header.Get("Retry-After"))
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second
	}
	if when, err := http.ParseTime(value); err == nil {
		if wait := time.Until(when); wait > 0 {
			return wait
		}
	}
	return 0
}

// AsAPIError returns the *APIError in err's chain, if any.
func AsAPIError(err error) (*APIError, bool) {
	var apiErr *APIError
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}

// hasStatus reports whether err is an *APIError with the given status.
func hasStatus(err error, status int) bool {
	apiErr, ok := AsAPIError(err)
	return ok && apiErr.Status == status
}

// IsNotFound reports whether err is a 404: no such scenario, plugin, token, Downtime or route.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409: the object changed meanwhile, or exists otherwise.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsInvalid reports whether err is a 422: the document was refused; see APIError.FieldErrors.
func IsInvalid(err error) bool { return hasStatus(err, http.StatusUnprocessableEntity) }

// IsBadRequest reports whether err is a 400: a malformed request.
func IsBadRequest(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsUnauthenticated reports whether err is a 401: no token, or one not accepted.
func IsUnauthenticated(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports whether err is a 403: the token lacks the permission, the target is
// outside its clusters, or every scenario is stopped (the global kill switch).
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsTooManyRequests reports whether err is a 429; see [RetryAfter].
func IsTooManyRequests(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }

// IsUnavailable reports whether err is a 503: etcd did not answer the apiserver.
func IsUnavailable(err error) bool { return hasStatus(err, http.StatusServiceUnavailable) }

// RetryAfter returns how long the server asked to wait before the next request, when err is
// an *APIError whose answer said so.
func RetryAfter(err error) (time.Duration, bool) {
	apiErr, ok := AsAPIError(err)
	if !ok || apiErr.RetryAfter <= 0 {
		return 0, false
	}
	return apiErr.RetryAfter, true
}
