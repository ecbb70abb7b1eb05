package server

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/ratelimit"
)

// realIP makes r.RemoteAddr the client's address when the request came
// through a trusted reverse proxy: the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy. Requests from
// anyone else keep their peer address, whatever headers they send, so a
// client cannot choose the IP its limits are counted against.
func realIP(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, ok := forwardedFor(r, trusted); ok {
			r2 := *r
			r2.RemoteAddr = net.JoinHostPort(ip.String(), "0")
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor returns the client address a trusted proxy reported.
func forwardedFor(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := addrOf(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // garbage from a proxy: keep the peer
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func addrOf(hostport string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		a, err := netip.ParseAddr(hostport)
		return a.Unmap(), err == nil
	}
	return ap.Addr().Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limitListener caps the concurrent connections of each peer IP, against
// connection floods. Trusted proxies are exempt: every client behind them
// shares their address, and the per-client limits of the API and the
// gateway apply to the forwarded address instead. A refused connection is
// answered 429 and closed without reaching the HTTP server.
type limitListener struct {
	net.Listener
	perIP   *ratelimit.Concurrency
	max     int
	trusted []netip.Prefix
	refused prometheus.Counter
	log     *slog.Logger
}

func newLimitListener(ln net.Listener, max int, trusted []netip.Prefix, reg prometheus.Registerer, log *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringd_http_connections_refused_total",
		Help: "TCP connections refused because their IP had --max-conns-per-ip open.",
	})
	if reg != nil {
		reg.MustRegister(refused)
	}
	return &limitListener{Listener: ln, perIP: ratelimit.NewConcurrency(max), max: max, trusted: trusted, refused: refused, log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := addrOf(c.RemoteAddr().String())
		if !ok || isTrusted(ip, l.trusted) {
			return c, nil
		}
		key := ip.String()
		if l.perIP.Acquire(key) {
			return &countedConn{Conn: c, release: func() { l.perIP.Release(key) }}, nil
		}
		l.refused.Inc()
		l.log.Debug("connection refused: too many from this IP", "ip", key, "max", l.max)
		refuseConn(c, l.max)
	}
}

// refuseConn answers 429 without reading the request (a flood's requests
// are not worth reading) and closes. The write is bounded: a peer that
// does not read cannot hold the accept loop.
func refuseConn(c net.Conn, max int) {
	body := `{"http":429,"code":"too_many_connections","error":"more than ` + strconv.Itoa(max) + ` connections from your address"}` + "\n"
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write([]byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	_ = c.Close()
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn is the wrapped connection (as tls.Conn's): the gateway waits on
// its socket for idle WebSocket clients.
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func apiLimits(c config.Config) httpapi.Limits {
	return httpapi.Limits{AuthFailuresPerIP: c.AuthFailuresPerIP, AuthFailuresPerApp: c.AuthFailuresPerApp}
}

// wsLimit is the gateway's MaxConnsPerIP: its zero means its default, so
// "no limit" (0 in the config) is passed as -1.
func wsLimit(c config.Config) int {
	if c.MaxWebSocketsPerIP == 0 {
		return -1
	}
	return c.MaxWebSocketsPerIP
}
