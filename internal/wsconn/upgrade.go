// Package wsconn is the server side of RFC 6455 WebSocket connections,
// built for many connections that mostly sit idle. An idle Conn is its
// socket and a few words of state: no read or write buffer, no goroutine
// and no timer of its own. A reader borrows a buffer from a pool while it
// reads a burst of frames and gives it back when nothing is left
// buffered, and Await waits for the next burst without one.
//
// It speaks what the gateway needs: text and binary messages, fragmented
// or not, pings, pongs and the close handshake, one subprotocol, no
// extensions (a client offering compression gets none).
package wsconn

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"

	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Options configure the connections Upgrade returns.
type Options struct {
	// Subprotocol is selected when the client offers it.
	Subprotocol string
	// OriginPatterns, when not nil, limits the browser origins allowed:
	// an Origin header must name the request's own host or match one of
	// these path.Match patterns (case-insensitively). Nil allows every
	// origin.
	OriginPatterns []string
	// ReadLimit is the largest message accepted; a larger one closes the
	// connection with 1009. Zero means 32 MiB.
	ReadLimit int64
	// WriteTimeout bounds each frame written. Zero means 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the close handshake: after sending a close
	// frame the connection waits this long for the client's answer before
	// it closes the socket. Zero means 5 s.
	CloseTimeout time.Duration
	// OnControl, if set, is called on every ping and pong from the client
	// (from the reading goroutine): a sign of life.
	OnControl func()
}

const (
	defaultReadLimit    = 32 << 20
	defaultWriteTimeout = 10 * time.Second
	defaultCloseTimeout = 5 * time.Second
)

// HandshakeError is a refused upgrade request; Upgrade has answered it
// with Status.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake refused (%d): %s", e.Status, e.Reason)
}

// keyGUID is the fixed GUID of RFC 6455 section 1.3.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept value answering key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + keyGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Upgrade checks the client's opening handshake, answers it with 101 and
// takes the connection over from net/http. A refused handshake is
// answered with an HTTP error and returned as a *HandshakeError.
func Upgrade(w http.ResponseWriter, r *http.Request, opts Options) (*Conn, error) {
	key, proto, herr := checkHandshake(r, opts)
	if herr != nil {
		if herr.Status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, herr.Reason, herr.Status)
		return nil, herr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: hijack: %w", err)
	}
	// Frames the client sent right behind its request are in net/http's
	// read buffer; they are copied out so that buffer can go.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	c := newConn(nc, early, opts)
	if err := c.writeHandshake(key, proto); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("websocket upgrade: write the response: %w", err)
	}
	return c, nil
}

func checkHandshake(r *http.Request, opts Options) (key, proto string, _ *HandshakeError) {
	switch {
	case r.Method != http.MethodGet:
		return "", "", &HandshakeError{http.StatusMethodNotAllowed, "a WebSocket handshake is a GET request"}
	case r.ProtoMajor != 1 || r.ProtoMinor < 1:
		return "", "", &HandshakeError{http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1"}
	case !HeaderHasToken(r.Header, "Connection", "upgrade") || !HeaderHasToken(r.Header, "Upgrade", "websocket"):
		return "", "", &HandshakeError{http.StatusUpgradeRequired, "the request does not ask for a WebSocket upgrade"}
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", "", &HandshakeError{http.StatusUpgradeRequired, "only WebSocket version 13 is spoken"}
	}
	key = strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return "", "", &HandshakeError{http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"}
	}
	if err := checkOrigin(r, opts.OriginPatterns); err != nil {
		return "", "", &HandshakeError{http.StatusForbidden, err.Error()}
	}
	if opts.Subprotocol != "" {
		for _, p := range HeaderTokens(r.Header, "Sec-WebSocket-Protocol") {
			if p == opts.Subprotocol {
				proto = p
				break
			}
		}
	}
	return key, proto, nil
}

func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if patterns == nil || origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the Origin header %q is not a URL", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	withScheme := strings.ToLower(u.Scheme) + "://" + host
	for _, p := range patterns {
		// A pattern with a scheme ("https://*.example.com") matches the
		// origin's scheme and host, one without matches the host.
		target := host
		if strings.Contains(p, "://") {
			target = withScheme
		}
		ok, err := path.Match(strings.ToLower(p), target)
		if err != nil {
			return fmt.Errorf("the origin pattern %q is malformed: %w", p, err)
		}
		if ok {
			return nil
		}
	}
	return errors.New("the origin " + u.Host + " is not allowed")
}

func (c *Conn) writeHandshake(key, proto string) error {
	// net/http may have left its own deadlines on the connection.
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	b := make([]byte, 0, 160)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, AcceptKey(key)...)
	if proto != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, proto...)
	}
	b = append(b, "\r\n\r\n"...)
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(b)
	return err
}

// HeaderTokens splits the comma-separated values of a header.
func HeaderTokens(h http.Header, key string) []string {
	var out []string
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// HeaderHasToken reports whether a header lists token (case-insensitively).
func HeaderHasToken(h http.Header, key, token string) bool {
	for _, t := range HeaderTokens(h, key) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}
