package chaos

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Version is the version of this SDK, sent in the User-Agent header.
const Version = "0.1.0"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// Client talks to one chaos-apiserver. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], without a trailing slash
	token     string
	http      *http.Client
	userAgent string
	// rateLimitWait is how long, in all, a request waits out 429s before it gives up.
	rateLimitWait time.Duration
}

// config is what the options set before the client is built.
type config struct {
	token      string
	roots      *x509.CertPool
	httpClient *http.Client
	timeout    time.Duration
	userAgent  string
	rateLimit  time.Duration
}

// Option configures a [Client].
type Option func(*config) error

// WithToken sets the bearer token sent with every request.
func WithToken(token string) Option {
	return func(c *config) error {
		c.token = strings.TrimSpace(token)
		return nil
	}
}

// WithCAFile trusts the PEM certificates in path (and only those) to verify the server.
func WithCAFile(path string) Option {
	return func(c *config) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("chaos: reading the CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("chaos: %s holds no PEM certificate", path)
		}
		c.roots = pool
		return nil
	}
}

// WithCAPool trusts the certificates in pool (and only those) to verify the server.
func WithCAPool(pool *x509.CertPool) Option {
	return func(c *config) error {
		if pool == nil {
			return errors.New("chaos: WithCAPool: nil pool")
		}
		c.roots = pool
		return nil
	}
}

// WithHTTPClient makes requests with client instead of one the SDK builds. It cannot be
// combined with WithCAFile or WithCAPool: configure the client's transport instead. A client
// whose transport skips TLS verification is refused.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) error {
		if client == nil {
			return errors.New("chaos: WithHTTPClient: nil client")
		}
		c.httpClient = client
		return nil
	}
}

// WithTimeout bounds each request, from connecting to reading the whole answer. Contexts
// bound requests too; without this option only they do.
func WithTimeout(timeout time.Duration) Option {
	return func(c *config) error {
		c.timeout = timeout
		return nil
	}
}

// WithUserAgent replaces the User-Agent header (chaos-sdk-go/<Version> by default).
func WithUserAgent(userAgent string) Option {
	return func(c *config) error {
		c.userAgent = userAgent
		return nil
	}
}

// WithRateLimitRetry makes every request wait out 429 answers (as long as their Retry-After
// asks, 1s when it does not) and send again, until it has waited maxWait in all. A 429 is
// answered before the request is carried out, so sending it again is safe for every operation.
// By default a 429 is returned at once, as an *APIError.
func WithRateLimitRetry(maxWait time.Duration) Option {
	return func(c *config) error {
		c.rateLimit = maxWait
		return nil
	}
}

// NewClient returns a client of the apiserver at server, an http:// or https:// URL (with an
// optional path prefix, for a server behind a proxy). TLS certificates are always verified:
// against the system's roots, or the CA given with WithCAFile or WithCAPool.
func NewClient(server string, opts ...Option) (*Client, error) {
	base, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	cfg := config{userAgent: "chaos-sdk-go/" + Version}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	httpClient, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return &Client{
		base:          base,
		token:         cfg.token,
		http:          httpClient,
		userAgent:     cfg.userAgent,
		rateLimitWait: cfg.rateLimit,
	}, nil
}

// parseServer checks the server URL and returns it without a trailing slash.
func parseServer(server string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil {
		return "", fmt.Errorf("chaos: server URL %q: %w", server, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("chaos: server URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", server)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("chaos: server URL %q: no query, fragment or user info, please", server)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// client builds the http.Client the options ask for.
func (c *config) client() (*http.Client, error) {
	if c.httpClient != nil {
		if c.roots != nil {
			return nil, errors.New("chaos: WithHTTPClient cannot be combined with WithCAFile or WithCAPool")
		}
		if skipsVerification(c.httpClient) {
			return nil, errors.New("chaos: the HTTP client skips TLS verification (InsecureSkipVerify); refused")
		}
		client := *c.httpClient
		if c.timeout > 0 {
			client.Timeout = c.timeout
		}
		return &client, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport, Timeout: c.timeout}, nil
}

func skipsVerification(client *http.Client) bool {
	transport, ok := client.Transport.(*http.Transport)
	return ok && transport.TLSClientConfig != nil && transport.TLSClientConfig.InsecureSkipVerify
}

// Server is the URL the client talks to.
func (c *Client) Server() string { return c.base }

// request is one call of an operation.
type request struct {
	op          Operation
	path        []string   // the path parameters, in the order of the template
	query       url.Values // nil: none
	body        []byte     // nil: none
	contentType string
}

// do sends r and decodes a JSON answer into out (nil: discard it). A non-2xx answer is an
// *APIError.
func (c *Client) do(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("chaos: %s: decoding the answer: %w", r.op.ID, err)
	}
	return nil
}

// doText sends r and returns the body of its answer as text.
func (c *Client) doText(ctx context.Context, r request) (string, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	defer drain(resp.Body)
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("chaos: %s: reading the answer: %w", r.op.ID, err)
	}
	return string(text), nil
}

// send makes the HTTP request of r, waiting out 429s as WithRateLimitRetry allows; the caller
// closes the body of a 2xx answer.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	var waited time.Duration
	for {
		resp, err := c.sendOnce(ctx, r)
		apiErr, ok := AsAPIError(err)
		if !ok || apiErr.Status != http.StatusTooManyRequests {
			return resp, err
		}
		wait := apiErr.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		if waited+wait > c.rateLimitWait || sleep(ctx, wait) != nil {
			return nil, err
		}
		waited += wait
	}
}

// sendOnce makes the HTTP request of r once.
func (c *Client) sendOnce(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", r.op.ID, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer drain(resp.Body)
		return nil, newAPIError(r.op, resp)
	}
	return resp, nil
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	path, err := expandPath(r.op.Path, r.path)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", r.op.ID, err)
	}
	target := c.base + path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.op.Method, target, body)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", r.op.ID, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// expandPath fills the {placeholders} of template with params, in order, each escaped as one
// path segment.
func expandPath(template string, params []string) (string, error) {
	var b strings.Builder
	rest := template
	for _, param := range params {
		open := strings.IndexByte(rest, '{')
		end := strings.IndexByte(rest, '}')
		if open < 0 || end < open {
			return "", fmt.Errorf("%s has fewer parameters than the %d given", template, len(params))
		}
		if param == "" || param == "." || param == ".." {
			return "", fmt.Errorf("%s: %q is not a valid %s", template, param, rest[open+1:end])
		}
		b.WriteString(rest[:open])
		b.WriteString(url.PathEscape(param))
		rest = rest[end+1:]
	}
	if strings.ContainsRune(rest, '{') {
		return "", fmt.Errorf("%s has more parameters than the %d given", template, len(params))
	}
	b.WriteString(rest)
	return b.String(), nil
}

// drain reads what is left of body (so that the connection is reused) and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
