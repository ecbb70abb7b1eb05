package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
)

// TestSlowlorisHTTP: a client that trickles its headers, one line at a
// time and never finishing, is cut off after --read-header-timeout.
func TestSlowlorisHTTP(t *testing.T) {
	cfg := devConfig(t, "")
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	r := startCfg(t, cfg)
	c, err := net.Dial("tcp", r.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: ringd\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c)
	}()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("cut after %v, want about the 300ms header timeout", took)
			}
			return
		case <-tick.C:
			_, _ = fmt.Fprintf(c, "X-Slow-%d: x\r\n", i)
		case <-deadline:
			t.Fatal("a client trickling headers was not cut off")
		}
	}
}

// TestConnectionFloodPerIP: one IP holds at most --max-conns-per-ip
// connections; the next is answered 429 and closed, and a closed
// connection frees its slot.
func TestConnectionFloodPerIP(t *testing.T) {
	cfg := devConfig(t, "")
	cfg.MaxConnsPerIP = 4
	r := startCfg(t, cfg)
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", r.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// A keep-alive request on a held connection still works.
	if _, err := io.WriteString(held[0], "GET /healthz HTTP/1.1\r\nHost: ringd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("request on a held connection: %v %v", resp, err)
	}
	resp.Body.Close()

	status, retry := floodStatus(t, r.srv.Addr())
	if status != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("connection over the limit: %d Retry-After %q, want 429 with Retry-After", status, retry)
	}
	held[1].Close()
	held = append(held[:1], held[2:]...)
	waitUntil(t, 5*time.Second, func() error {
		if status, _ := floodStatus(t, r.srv.Addr()); status != http.StatusOK {
			return fmt.Errorf("after a close: %d", status)
		}
		return nil
	})
}

// floodStatus opens a connection, asks for /healthz and returns the status.
func floodStatus(t *testing.T, addr string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: ringd\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// waitUntil polls f until it returns nil or d passes.
func waitUntil(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func statusWithXFF(t *testing.T, base, authz, xff string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "GET", base+"/v1/apps", nil)
	req.Header.Set("Authorization", authz)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthLimitsAndProxies: failed admin tokens are limited per client IP.
// Behind a trusted proxy the client is the X-Forwarded-For address; from
// anyone else the header is ignored, so it cannot dodge the limit.
func TestAuthLimitsAndProxies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted string
	}{{"behind a trusted proxy", "127.0.0.1"}, {"no trusted proxy", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := devConfig(t, "")
			cfg.AuthFailuresPerIP, cfg.TrustedProxies = 3, tt.trusted
			r := startCfg(t, cfg)
			base, good := r.srv.URL(), "Bearer "+r.srv.AdminToken()
			for i := range 3 {
				// Each failure claims another client address.
				if status, body := statusWithXFF(t, base, "Bearer wrong-token-000000", fmt.Sprintf("198.51.100.%d", i+1)); status != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d %s", i, status, body)
				}
			}
			status, body := statusWithXFF(t, base, good, "198.51.100.1")
			if tt.trusted == "" {
				// All from 127.0.0.1: blocked, the right token too.
				if status != http.StatusTooManyRequests || !strings.Contains(body, "auth_rate_limited") {
					t.Fatalf("after 3 failures from one peer with varied X-Forwarded-For: %d %s, want 429", status, body)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("one failure per forwarded client: %d %s, want 200", status, body)
			}
			for range 2 {
				statusWithXFF(t, base, "Bearer wrong-token-000000", "203.0.113.7, 127.0.0.1")
			}
			statusWithXFF(t, base, "Bearer wrong-token-000000", "203.0.113.7")
			if status, body := statusWithXFF(t, base, good, "203.0.113.7"); status != http.StatusTooManyRequests {
				t.Fatalf("a forwarded client after 3 failures: %d %s, want 429", status, body)
			}
			if status, body := statusWithXFF(t, base, good, "203.0.113.8"); status != http.StatusOK {
				t.Fatalf("another forwarded client: %d %s", status, body)
			}
		})
	}
}

// TestInviteSpamThroughAPI: a user's invitations are limited by the app's
// invites_per_minute, through the REST API as through the gateway.
func TestInviteSpamThroughAPI(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := must[*client.App](t)(e.admin.CreateApp(ctx, "spam"))
	s := must[*client.Settings](t)(e.admin.Settings(ctx, app.SDKAppID))
	s.InvitesPerMinute, s.CallWaiting = 3, true
	must[*client.Settings](t)(e.admin.PutSettings(ctx, app.SDKAppID, *s))
	var limited error
	for i := range 6 {
		_, err := e.admin.StartCall(ctx, app.SDKAppID, client.StartCall{Caller: "spammer", Invitees: []string{fmt.Sprintf("victim%d", i)}, Media: "audio"})
		if i < 3 && err != nil {
			t.Fatalf("invite %d: %v", i, err)
		}
		if i >= 3 {
			if err == nil {
				t.Fatalf("invite %d of a limit of 3 a minute was accepted", i)
			}
			limited = err
		}
	}
	wantCode(t, limited, "rate_limited")
	var ce *client.Error
	if errors.As(limited, &ce) && ce.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", ce.Status)
	}
	// Another user of the app is not limited by the spammer.
	if _, err := e.admin.StartCall(ctx, app.SDKAppID, client.StartCall{Caller: "honest", Invitees: []string{"friend"}, Media: "audio"}); err != nil {
		t.Fatalf("another caller: %v", err)
	}
	// Over the gateway too.
	ca := callApp{App: app}
	conn := e.connect(t, ca, "spammer", "spam-phone", "foreground")
	_, err := conn.Invite(ctx, client.InviteRequest{Invitees: []string{"victim9"}, Media: "audio"})
	wantCode(t, err, "rate_limited")
}
