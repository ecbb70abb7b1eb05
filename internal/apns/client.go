package apns

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultRequestTimeout  = 10 * time.Second
	DefaultReadIdleTimeout = 60 * time.Second
	DefaultPingTimeout     = 15 * time.Second
	DefaultMaxConnsPerPool = 8
)

// Config configures a Client. The zero value works against Apple.
type Config struct {
	// ProductionURL and SandboxURL are the APNs hosts ("https://host[:port]");
	// empty means the ProductionURL and SandboxURL constants. Tests and the
	// simulator point them elsewhere.
	ProductionURL, SandboxURL string
	RootCAs                   *x509.CertPool // nil: the system roots

	// RequestTimeout bounds one Send (waiting for a connection included)
	// and one dial. Default 10s.
	RequestTimeout time.Duration
	// ReadIdleTimeout and PingTimeout turn on HTTP/2 PING health checks: a
	// connection silent for ReadIdleTimeout is pinged and closed if no ack
	// comes within PingTimeout. Defaults 60s and 15s.
	ReadIdleTimeout, PingTimeout time.Duration
	// TokenRefresh is the provider token age at which a connection signs a
	// new one. Default 50m, kept within [MinTokenRefresh, MaxTokenRefresh].
	TokenRefresh time.Duration
	// MaxConnsPerPool bounds the connections of one (credential,
	// environment). More than one is opened only when all are at their
	// stream limit. Default 8.
	MaxConnsPerPool int

	Now      func() time.Time // provider token iat and dial backoff; default time.Now
	Logger   *slog.Logger     // default slog.Default() with component=apns
	Observer Observer         // metrics hooks; default NopObserver
}

func (cfg Config) withDefaults() Config {
	if cfg.ProductionURL == "" {
		cfg.ProductionURL = ProductionURL
	}
	if cfg.SandboxURL == "" {
		cfg.SandboxURL = SandboxURL
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.ReadIdleTimeout <= 0 {
		cfg.ReadIdleTimeout = DefaultReadIdleTimeout
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	// Never sooner than 20 minutes: see clampTokenRefresh.
	cfg.TokenRefresh = clampTokenRefresh(max(0, cfg.TokenRefresh))
	if cfg.MaxConnsPerPool <= 0 {
		cfg.MaxConnsPerPool = DefaultMaxConnsPerPool
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default().With("component", "apns")
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	return cfg
}

// endpoint is one APNs host, parsed once.
type endpoint struct {
	base       string // "https://host[:port]"
	host       string // host[:port] as configured
	addr       string // host:port to dial
	serverName string
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("apns: host URL %q: %w", raw, err)
	}
	if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return endpoint{}, fmt.Errorf("apns: host URL %q: want https://host[:port]", raw)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return endpoint{
		base:       "https://" + u.Host,
		host:       u.Host,
		addr:       net.JoinHostPort(u.Hostname(), port),
		serverName: u.Hostname(),
	}, nil
}

// Client sends notifications to APNs over HTTP/2, with one connection pool
// per (credential ID, environment). It is safe for concurrent use.
type Client struct {
	cfg       Config
	endpoints map[string]endpoint // by environment
	log       *slog.Logger

	// ctx is cancelled by Close; dials and graceful shutdowns derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // dials and shutdowns in the background
	open   atomic.Int64

	mu     sync.RWMutex
	pools  map[poolKey]*pool
	closed bool
}

// NewClient checks cfg, fills in defaults and returns a Client. It opens no
// connection: pools dial on their first Send.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	prod, err := parseEndpoint(cfg.ProductionURL)
	if err != nil {
		return nil, err
	}
	sandbox, err := parseEndpoint(cfg.SandboxURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:       cfg,
		endpoints: map[string]endpoint{Production: prod, Development: sandbox},
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		pools:     make(map[poolKey]*pool),
	}, nil
}

// Send validates n and sends it with cred's pool. A nil error means APNs
// answered: read Response.Status and Classify. Transport failures, an
// expired ctx or RequestTimeout return (nil, err); a notification APNs would
// refuse returns a *RequestError without being sent.
//
// Send retries once by itself in two cases where APNs did not take the
// push: a request the connection could not start (GOAWAY, refused stream),
// and 403 ExpiredProviderToken, after a fresh token.
func (c *Client) Send(ctx context.Context, cred *Credential, n *Notification) (*Response, error) {
	if err := ValidateNotification(n); err != nil {
		return nil, err
	}
	p, err := c.pool(cred)
	if err != nil {
		return nil, err
	}
	if cred.SigningKey != nil && n.Topic == "" {
		return nil, reqErr("MissingTopic", "token authentication needs apns-topic")
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > c.cfg.RequestTimeout {
		// Only when ctx would allow longer: a context that ends no later
		// already bounds the request, and each derived one costs a timer
		// and the parent's bookkeeping on every push.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	start := time.Now()
	resp, retry, err := p.send(ctx, n)
	if retry && ctx.Err() == nil {
		resp, _, err = p.send(ctx, n)
	}
	if resp != nil {
		resp.Latency = time.Since(start)
	}
	return resp, err
}

// send makes one attempt. retry reports that APNs did not take the push and
// that another attempt may succeed.
func (p *pool) send(ctx context.Context, n *Notification) (resp *Response, retry bool, err error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer p.release(c)
	var tok *providerToken
	bearer := ""
	if c.tokens != nil {
		if tok, err = c.tokens.token(); err != nil {
			return nil, false, err
		}
		bearer = tok.bearer
	}
	start := time.Now()
	res, err := c.cc.roundTrip(ctx, devicePath(n), requestFields(n, bearer), n.Payload)
	if err != nil {
		p.requestDone(n, 0, "", time.Since(start), err)
		return nil, notSent(err), fmt.Errorf("apns: POST to %s: %w", p.host, err)
	}
	resp = newResponse(res)
	resp.Host = p.host
	p.answered(c)
	p.requestDone(n, resp.Status, resp.Reason, time.Since(start), nil)
	if resp.Reason == "ExpiredProviderToken" && tok != nil {
		p.tokenExpired(c, tok)
		retry = true
	}
	return resp, retry, nil
}

// tokenExpired handles 403 ExpiredProviderToken: a fresh token on this
// connection, or a new connection when the token was young (clock skew).
func (p *pool) tokenExpired(c *conn, tok *providerToken) {
	age := p.client.cfg.Now().Sub(tok.issued)
	if c.tokens.rejectedAsExpired(tok) {
		p.log.Error("apns rejected a young provider token as expired; check this server's clock. Replacing the connection", "token_age", age)
		p.retire(c)
		return
	}
	p.log.Warn("apns provider token expired; signing a new one", "token_age", age)
}

func (p *pool) requestDone(n *Notification, status int, reason string, d time.Duration, err error) {
	p.client.cfg.Observer.RequestDone(RequestEvent{
		CredentialID: p.key.id, Environment: p.key.env, Host: p.host,
		Status: status, Reason: reason, Latency: d, Err: err,
	})
	if err != nil {
		p.log.Debug("apns request failed", tokenAttr(n.DeviceToken), "error", err)
		return
	}
	if status != 200 {
		p.log.Debug("apns rejected", tokenAttr(n.DeviceToken), "status", status, "reason", reason)
	}
}

// pool returns cred's pool, creating it on first use. A credential whose
// key material changed under the same ID (replaced without Forget) gets a
// new pool: APNs binds a connection to its key, and mixing keys on one
// connection gives 403 UnrelatedKeyIdInToken.
func (c *Client) pool(cred *Credential) (*pool, error) {
	if err := checkCredential(cred); err != nil {
		return nil, err
	}
	key := poolKey{cred.ID, cred.Environment}
	c.mu.RLock()
	p, closed := c.pools[key], c.closed
	c.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil && sameCredential(&p.cred, cred) {
		return p, nil
	}
	return c.replacePool(key, cred)
}

func (c *Client) replacePool(key poolKey, cred *Credential) (*pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	old := c.pools[key]
	if old != nil && sameCredential(&old.cred, cred) {
		return old, nil // another Send created it meanwhile
	}
	p := c.newPool(key, cred)
	c.pools[key] = p
	if old != nil {
		c.log.Info("apns credential changed; replacing its connections", "credential_id", key.id, "environment", key.env)
		c.closeLater(old)
	}
	return p, nil
}

func (c *Client) newPool(key poolKey, cred *Credential) *pool {
	ep := c.endpoints[key.env]
	return &pool{
		client: c,
		key:    key,
		cred:   *cred,
		base:   ep.base,
		addr:   ep.addr,
		host:   ep.host,
		tls:    tlsConfig(ep.serverName, c.cfg.RootCAs, cred.Certificate),
		log:    c.log.With("credential_id", key.id, "environment", key.env, "host", ep.host),
	}
}

// closeLater closes p in the background, letting its requests finish
// within RequestTimeout. Caller holds c.mu and has checked !c.closed, so the
// WaitGroup cannot grow while Close waits on it.
func (c *Client) closeLater(p *pool) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
		defer cancel()
		p.close(ctx)
	}()
}

func checkCredential(cred *Credential) error {
	switch {
	case cred == nil:
		return errors.New("apns: no credential")
	case cred.Environment != Development && cred.Environment != Production:
		return fmt.Errorf("apns: credential %d: environment %q is neither %q nor %q", cred.ID, cred.Environment, Development, Production)
	case (cred.Certificate == nil) == (cred.SigningKey == nil):
		return fmt.Errorf("apns: credential %d: need exactly one of a certificate or a signing key", cred.ID)
	case cred.SigningKey != nil && (cred.KeyID == "" || cred.TeamID == ""):
		return fmt.Errorf("apns: credential %d: a signing key needs its key ID and team ID", cred.ID)
	case cred.SigningKey != nil && cred.SigningKey.Curve != elliptic.P256():
		return fmt.Errorf("apns: credential %d: %w", cred.ID, errNotP256)
	case cred.Certificate != nil && len(cred.Certificate.Certificate) == 0:
		return fmt.Errorf("apns: credential %d: the certificate is empty", cred.ID)
	}
	return nil
}

// sameCredential compares key material, cheaply when the pointers match
// (the common case: the push pipeline keeps opened credentials).
func sameCredential(a, b *Credential) bool {
	if a.KeyID != b.KeyID || a.TeamID != b.TeamID {
		return false
	}
	if a.SigningKey != b.SigningKey && (a.SigningKey == nil || b.SigningKey == nil || !a.SigningKey.Equal(b.SigningKey)) {
		return false
	}
	if a.Certificate == b.Certificate {
		return true
	}
	if a.Certificate == nil || b.Certificate == nil {
		return false
	}
	return bytes.Equal(a.Certificate.Certificate[0], b.Certificate.Certificate[0])
}

// Forget closes the pools of a credential that was deleted or replaced, in
// both environments. Requests in flight finish (within RequestTimeout);
// the next Send with that ID opens new connections.
func (c *Client) Forget(credentialID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, env := range []string{Development, Production} {
		key := poolKey{credentialID, env}
		if p := c.pools[key]; p != nil {
			delete(c.pools, key)
			c.closeLater(p)
		}
	}
}

// OpenConnections is the number of open connections to APNs, draining ones
// included. It stays at or below MaxConnsPerPool × Pools(), plus the
// connections of pools being closed by Forget or a credential change.
func (c *Client) OpenConnections() int {
	return int(c.open.Load())
}

// Pools is the number of connection pools: one per (credential,
// environment) that has sent.
func (c *Client) Pools() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pools)
}

// Close closes every connection at once, failing requests in flight, and
// waits for background dials and shutdowns to end. Send returns ErrClosed
// afterwards. Stop the callers first for a clean shutdown.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	pools := c.pools
	c.pools = nil
	c.mu.Unlock()

	c.cancel()
	for _, p := range pools {
		p.abort()
	}
	c.wg.Wait()
	return nil
}
