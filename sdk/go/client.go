package chaos

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"chaosctl.dev/sdk/go/chaosapi"
)

// Version is the version of this SDK, sent in the User-Agent header.
const Version = "0.1.0"

// Client talks to one chaos-apiserver. It is safe for concurrent use.
type Client struct {
	// API is the generated client, one method per operation of the API's document, on this
	// client's connection, token and user agent. Pass what its Execute methods return to
	// [Result] to get an *APIError for a refusal.
	API *chaosapi.APIClient

	server string // scheme://host[:port][/prefix], without a trailing slash
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

// WithTimeout bounds each request, from connecting to reading the whole answer (waiting out
// 429s included, see WithRateLimitRetry). Contexts bound requests too; without this option
// only they do.
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
	api := chaosapi.NewConfiguration()
	api.Servers = chaosapi.ServerConfigurations{{URL: base}}
	api.HTTPClient = httpClient
	api.UserAgent = cfg.userAgent
	if cfg.token != "" {
		api.AddDefaultHeader("Authorization", "Bearer "+cfg.token)
	}
	return &Client{API: chaosapi.NewAPIClient(api), server: base}, nil
}

// parseServer checks the server URL and returns it without a trailing slash: the generated
// client appends each operation's path (/v1/...) to it.
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
	var client http.Client
	if c.httpClient != nil {
		if c.roots != nil {
			return nil, errors.New("chaos: WithHTTPClient cannot be combined with WithCAFile or WithCAPool")
		}
		if skipsVerification(c.httpClient) {
			return nil, errors.New("chaos: the HTTP client skips TLS verification (InsecureSkipVerify); refused")
		}
		client = *c.httpClient
	} else {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
		client.Transport = transport
	}
	if c.timeout > 0 {
		client.Timeout = c.timeout
	}
	if c.rateLimit > 0 {
		base := client.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		client.Transport = &rateLimitRetry{base: base, maxWait: c.rateLimit}
	}
	return &client, nil
}

func skipsVerification(client *http.Client) bool {
	transport, ok := client.Transport.(*http.Transport)
	return ok && transport.TLSClientConfig != nil && transport.TLSClientConfig.InsecureSkipVerify
}

// Server is the URL the client talks to.
func (c *Client) Server() string { return c.server }

// rateLimitRetry is the transport of WithRateLimitRetry: it sends a request that got a 429 again
// (the generated client and Apply both make requests whose body can be read again).
type rateLimitRetry struct {
	base    http.RoundTripper
	maxWait time.Duration
}

func (t *rateLimitRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	var waited time.Duration
	attempt := req
	for {
		resp, err := t.base.RoundTrip(attempt)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		wait := retryAfter(resp.Header)
		if wait <= 0 {
			wait = time.Second
		}
		next, ok := again(req)
		if !ok || waited+wait > t.maxWait {
			return resp, nil
		}
		drain(resp)
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		waited += wait
		attempt = next
	}
}

// again is a copy of req to send once more, with its body from the start; false when its body
// cannot be read again.
func again(req *http.Request) (*http.Request, bool) {
	next := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return next, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	next.Body = body
	return next, true
}
