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

	"chaosctl.dev/sdk/go/chaosapi"
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// FieldError is one thing wrong with a submitted document (a scenario, a Downtime, a token
// request).
type FieldError struct {
	// Path is the field's path (spec.tasks[0].replicas); empty for the document as a whole.
	Path string
	// Line is the 1-based line in the YAML or JSON text; 0 when unknown.
	Line int
	// Message says what is wrong.
	Message string
}

// String formats the error as path (line N): message.
func (e FieldError) String() string {
	var b strings.Builder
	b.WriteString(e.Path)
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

// APIError is an answer of the API other than 2xx. The helpers of [Client] and [Result] return
// one for such an answer; find it with errors.As or [AsAPIError].
type APIError struct {
	// Request is the request that failed: "GET /v1/scenarios/demo".
	Request string
	// Status is the HTTP status code.
	Status int
	// Code is the server's stable, machine-readable reason: Invalid, BadRequest, NotFound,
	// Conflict, Unauthenticated, Forbidden, TooManyRequests, PayloadTooLarge, Unavailable,
	// Internal. It is empty when the answer was not the API's error body (a proxy's page, a 405
	// without a body); Message then holds its text, or the status text.
	Code string
	// Message says what is wrong, for people; for an invalid document, its first problem.
	Message string
	// Field is the path of the field at fault (spec.volumes.step.min), when one is.
	Field string
	// Line is the 1-based line of that field in the submitted YAML or JSON; 0 when unknown.
	Line int
	// Errors lists every problem found, when the server listed several; see FieldErrors.
	Errors []FieldError
	// RetryAfter is how long the server asked to wait (the Retry-After header of a 429 or
	// 503); 0 when it did not say.
	RetryAfter time.Duration
}

// Error formats the error as chaos: REQUEST: STATUS CODE: [FIELD (line N): ]MESSAGE.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %s: %d", e.Request, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": ")
	b.WriteString(FieldError{Path: e.Field, Line: e.Line, Message: e.Message}.String())
	if n := len(e.Errors); n > 1 {
		fmt.Fprintf(&b, " (and %d more)", n-1)
	}
	return b.String()
}

// FieldErrors returns every problem of an invalid document, the first one included, whether
// the server listed several (in Errors) or gave the only one as Field, Line and Message. It
// returns nil for other errors.
func (e *APIError) FieldErrors() []FieldError {
	if len(e.Errors) > 0 {
		return e.Errors
	}
	if e.Code != "Invalid" {
		return nil
	}
	return []FieldError{{Path: e.Field, Line: e.Line, Message: e.Message}}
}

// newAPIError reads an error answer, whose body was read already.
func newAPIError(resp *http.Response, body []byte) *APIError {
	apiErr := &APIError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	if req := resp.Request; req != nil {
		apiErr.Request = req.Method + " " + req.URL.EscapedPath()
	}
	// The generated model, which checks the body is an error body (code and message present,
	// nothing unknown).
	var parsed chaosapi.ErrorBody
	if err := json.Unmarshal(body, &parsed); err != nil {
		apiErr.Message = strings.TrimSpace(string(body))
		if apiErr.Message == "" {
			apiErr.Message = http.StatusText(resp.StatusCode)
		}
		return apiErr
	}
	apiErr.Code, apiErr.Message = parsed.Code, parsed.Message
	apiErr.Field, apiErr.Line = parsed.GetField(), int(parsed.GetLine())
	for _, problem := range parsed.Errors {
		apiErr.Errors = append(apiErr.Errors, FieldError{
			Path: problem.Path, Line: int(problem.GetLine()), Message: problem.Message,
		})
	}
	return apiErr
}

// Result returns what a call of the generated client returned, with an *APIError for a non-2xx
// answer instead of the generated GenericOpenAPIError:
//
//	workers, err := chaos.Result(client.API.ClusterAPI.ListWorkers(ctx).Execute())
func Result[T any](value T, resp *http.Response, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, callError(resp, err)
	}
	return value, nil
}

// ResultBody is Result for the operations whose answer is text rather than a model (healthz,
// readyz, getMetrics, getOpenapi): it returns the body of the answer.
//
//	metrics, err := chaos.ResultBody(client.API.HealthAPI.GetMetrics(ctx).Execute())
func ResultBody(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, callError(resp, err)
	}
	// The generated client has read the body already, and left a copy in its place.
	return io.ReadAll(resp.Body)
}

// callError is the error of a generated call that failed.
func callError(resp *http.Response, err error) error {
	var generated *chaosapi.GenericOpenAPIError
	switch {
	case resp != nil && resp.StatusCode >= 300 && errors.As(err, &generated):
		return newAPIError(resp, generated.Body())
	case resp != nil && resp.Request != nil:
		// A 2xx whose body did not decode, or a body cut short.
		return fmt.Errorf("chaos: %s %s: reading the answer: %w", resp.Request.Method, resp.Request.URL.EscapedPath(), err)
	default:
		// No answer: the server unreachable, its certificate refused, a parameter the generated
		// client refused to send.
		return fmt.Errorf("chaos: %w", err)
	}
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

// drain reads what is left of an answer's body (so that the connection is reused) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
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
