// Package client is ringd's Go SDK: the REST API for app servers and
// operators (Admin), for one app user (User), the --dev APNs simulator's
// control API (Simulator), and a device's live connection (Connect, Conn;
// the protocol is docs/protocol.md).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is an error answer of ringd: switch on Code, never on Message.
type Error struct {
	Status  int    `json:"http"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return fmt.Sprintf("ringd: %s (%d): %s", e.Code, e.Status, e.Message) }

// conn is what every client shares: a base URL, an Authorization header
// and an http.Client.
type conn struct {
	base string
	auth string
	http *http.Client
}

func newConn(baseURL, auth string, hc *http.Client) conn {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return conn{base: strings.TrimRight(baseURL, "/"), auth: auth, http: hc}
}

// do sends a JSON request (body may be nil) and decodes a JSON answer into
// out (may be nil).
func (c conn) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c conn) send(req *http.Request, out any) error {
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return e
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
