package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// A connection that closes this soon after opening without APNs having
// answered on it counts as a failed dial for the backoff: APNs treats rapid
// connection and disconnection as a denial-of-service attack.
const minHealthyLife = 10 * time.Second

// closeWriteTimeout bounds the TLS close_notify write when a connection is
// closed; an unresponsive peer must not hang Close.
const closeWriteTimeout = 250 * time.Millisecond

// conn is one HTTP/2 connection of a pool, with its own provider token.
type conn struct {
	pool   *pool
	cc     *h2Conn
	tokens *tokenSource // nil with certificate auth
	opened time.Time    // wall clock with monotonic reading, for lifetimes

	// answered is set once APNs answered a request on this connection.
	answered atomic.Bool

	// Guarded by pool.mu.
	inflight int  // requests of ours between acquire and release
	limit    int  // the server's SETTINGS_MAX_CONCURRENT_STREAMS, last seen
	added    bool // in pool.conns and counted as open
	retired  bool // we decided to close it; not picked for new requests
	draining bool // retired while open: counted in pool.draining until closed
	closed   bool // its network connection is closed
}

// trackedConn tells the pool the moment the network connection closes
// (after GOAWAY, a lost PING, a reset, or our Close),
// so the open-connection count and the pool are exact without polling.
type trackedConn struct {
	*tls.Conn
	once    sync.Once
	onClose func()
}

func (t *trackedConn) Close() error {
	_ = t.Conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	err := t.Conn.Close()
	t.once.Do(t.onClose)
	return err
}

// dialTLS opens a TLS 1.2+ connection that negotiated h2, presenting the
// credential's certificate when it has one (see pool.tlsConfig). Each dial
// resolves the host afresh (Go has no DNS cache), as Apple recommends.
func dialTLS(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("apns: dial %s: %w", addr, err)
	}
	tc := nc.(*tls.Conn) // tls.Dialer always returns a *tls.Conn
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		_ = tc.Close()
		return nil, fmt.Errorf("apns: %s negotiated %q, not h2", addr, p)
	}
	return tc, nil
}

// openConn dials one connection for p and waits until it is usable.
func (p *pool) openConn(ctx context.Context) (*conn, error) {
	tc, err := dialTLS(ctx, p.addr, p.tls)
	if err != nil {
		return nil, err
	}
	c := &conn{pool: p, opened: time.Now()}
	tracked := &trackedConn{Conn: tc, onClose: func() { p.connClosed(c) }}
	cfg := p.client.cfg
	cc, err := newH2Conn(tracked, p.host, h2Config{readIdle: cfg.ReadIdleTimeout, pingTimeout: cfg.PingTimeout, writeTimeout: cfg.RequestTimeout})
	if err != nil {
		_ = tracked.Close()
		return nil, fmt.Errorf("apns: http2 handshake with %s: %w", p.host, err)
	}
	c.cc = cc
	// A PING round trip guarantees the server's SETTINGS (sent before its
	// PING ack) has been read, so the stream limit is known before the
	// first request; otherwise the client assumes 100 streams and a burst would
	// pile onto one connection that may allow only 1. It also proves the
	// server accepted our client certificate, which with TLS 1.3 shows only
	// after the handshake.
	if err := cc.Ping(ctx); err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("apns: first ping to %s: %w", p.host, err)
	}
	c.limit = max(1, int(cc.State().MaxConcurrentStreams))
	if key := p.cred.SigningKey; key != nil {
		c.tokens = &tokenSource{
			key: key, keyID: p.cred.KeyID, teamID: p.cred.TeamID,
			refresh: p.client.cfg.TokenRefresh,
			now:     p.client.cfg.Now,
			onIssue: func() { p.client.cfg.Observer.JWTIssued(p.event(nil)) },
		}
	}
	return c, nil
}

// tlsConfig is the client TLS configuration of one pool.
func tlsConfig(serverName string, roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12, // Apple requires TLS 1.2 or later
		NextProtos: []string{http2.NextProtoTLS},
		ServerName: serverName,
		RootCAs:    roots, // nil: the system roots
	}
	if cert != nil {
		// GetClientCertificate presents the certificate whatever CA list
		// the server's CertificateRequest carries; with Certificates Go
		// would send none if the list did not match.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	return cfg
}
