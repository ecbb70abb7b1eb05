package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/gateway"
	"github.com/ringd/ringd/internal/gateway/gatewaytest"
	"github.com/ringd/ringd/internal/server"
)

// lockedBuffer is an io.Writer safe for a goroutine that writes while the
// test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// summary lists the JSON lines as "action:invite:ok", "event:call.ended",
// "exit"; every line must be a JSON object.
func summary(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for line := range strings.Lines(out) {
		var l struct {
			Kind   string `json:"kind"`
			Action string `json:"action"`
			OK     *bool  `json:"ok"`
			Event  *struct {
				Type string `json:"type"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		switch l.Kind {
		case "action":
			got = append(got, fmt.Sprintf("action:%s:%t", l.Action, l.OK != nil && *l.OK))
		case "event":
			got = append(got, "event:"+l.Event.Type)
		default:
			got = append(got, l.Kind)
		}
	}
	return got
}

// hasInOrder tells whether the events of want appear in got in this
// order, the actions of want anywhere (an action's reply and the events it
// causes may come in either order), and "exit" last.
func hasInOrder(got, want []string) bool {
	if len(got) == 0 || got[len(got)-1] != "exit" {
		return false
	}
	i := 0
	var events []string
	for _, w := range want {
		if strings.HasPrefix(w, "action:") {
			if !slices.Contains(got, w) {
				return false
			}
		} else {
			events = append(events, w)
		}
	}
	for _, g := range got {
		if i < len(events) && g == events[i] {
			i++
		}
	}
	return i == len(events)
}

type cliRun struct {
	out  lockedBuffer
	errs lockedBuffer
	done chan error
}

func startCall(ctx context.Context, args ...string) *cliRun {
	r := &cliRun{done: make(chan error, 1)}
	go func() { r.done <- runCall(ctx, append(args, "--exit-after", "20s"), &r.out, &r.errs) }()
	return r
}

func (r *cliRun) wait(t *testing.T, who string) []string {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("%s: runCall: %v\nstderr: %s", who, err, r.errs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not exit; output:\n%s", who, r.out.String())
	}
	return summary(t, r.out.String())
}

func waitOutput(t *testing.T, r *cliRun, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", s, r.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCallScriptedOnFakeService runs two `ringd call` clients against the
// gateway with the fake call service.
func TestCallScriptedOnFakeService(t *testing.T) {
	hub := bus.NewHub()
	gw := gateway.New(gateway.Config{}, gatewaytest.NewFakeCalls(hub), hub, gatewaytest.Auth{}, gatewaytest.Policy{})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	defer gw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	bob := startCall(ctx, "--url", srv.URL, "--usersig", "1:bob", "--user", "bob", "--answer", "accept", "--answer-after", "20ms")
	waitOutput(t, bob, `"sync_done"`)
	alice := startCall(ctx, "--url", srv.URL, "--usersig", "1:alice", "--user", "alice", "--call", "bob", "--media", "video", "--hangup-after", "50ms")
	a, b := alice.wait(t, "alice"), bob.wait(t, "bob")
	if want := []string{"event:connected", "event:sync_done", "action:invite:true", "event:call.accepted", "action:hangup:true", "event:call.ended", "exit"}; !hasInOrder(a, want) {
		t.Fatalf("alice printed %v, want %v in order", a, want)
	}
	if want := []string{"event:call.invited", "action:accept:true", "event:call.ended", "exit"}; !hasInOrder(b, want) {
		t.Fatalf("bob printed %v, want %v in order", b, want)
	}
}

// TestCallScriptedOnServer runs `ringd call` clients against a real
// `ringd serve --dev` in-process.
func TestCallScriptedOnServer(t *testing.T) {
	cfg := config.Default()
	cfg.Dev, cfg.Addr, cfg.DataDir = true, "127.0.0.1:0", t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	demo := srv.Demo()
	as := func(user string, args ...string) []string {
		return append([]string{"--url", srv.URL(), "--app", fmt.Sprint(demo.SDKAppID), "--secret", demo.SecretKey, "--user", user}, args...)
	}

	tests := []struct {
		name      string
		callee    []string
		caller    []string
		wantBob   []string
		wantAlice []string
	}{
		{
			name:      "accept then hang up",
			callee:    []string{"--answer", "accept", "--answer-after", "20ms"},
			caller:    []string{"--call", "bob", "--media", "video", "--hangup-after", "50ms"},
			wantBob:   []string{"event:call.invited", "action:accept:true", "event:call.left", "event:call.ended", "exit"},
			wantAlice: []string{"action:invite:true", "event:call.accepted", "action:hangup:true", "event:call.ended", "exit"},
		},
		{
			name:      "decline",
			callee:    []string{"--answer", "decline"},
			caller:    []string{"--call", "bob"},
			wantBob:   []string{"event:call.invited", "action:decline:true", "exit"},
			wantAlice: []string{"action:invite:true", "event:call.rejected", "event:call.ended", "exit"},
		},
		{
			name:      "caller cancels",
			callee:    []string{"--answer", "none"},
			caller:    []string{"--call", "bob", "--cancel-after", "50ms"},
			wantBob:   []string{"event:call.invited", "event:call.cancelled", "exit"},
			wantAlice: []string{"action:invite:true", "action:cancel:true", "event:call.ended", "exit"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			bob := startCall(ctx, as("bob", append(tt.callee, "--device", fmt.Sprint("bob-", i))...)...)
			waitOutput(t, bob, `"sync_done"`)
			alice := startCall(ctx, as("alice", tt.caller...)...)
			a, b := alice.wait(t, "alice"), bob.wait(t, "bob")
			if !hasInOrder(a, tt.wantAlice) {
				t.Errorf("alice printed %v, want %v in order", a, tt.wantAlice)
			}
			if !hasInOrder(b, tt.wantBob) {
				t.Errorf("bob printed %v, want %v in order", b, tt.wantBob)
			}
			if slices.Contains(b, "event:kicked") {
				t.Error("bob was kicked")
			}
		})
	}

	t.Run("rest", func(t *testing.T) { testCallREST(ctx, t, srv, demo, len(tests)) })
}

// testCallREST checks the SDK's REST side of calls against the server.
func testCallREST(ctx context.Context, t *testing.T, srv *server.Server, demo *server.Demo, calls int) {
	admin := client.NewAdmin(srv.URL(), srv.AdminToken(), nil)
	list, err := admin.Calls(ctx, demo.SDKAppID, client.CallQuery{User: "bob", Since: time.Now().Add(-time.Hour), Limit: 10})
	if err != nil || len(list) != calls {
		t.Fatalf("Calls: %d calls, %v", len(list), err)
	}
	if c, err := admin.Call(ctx, demo.SDKAppID, list[0].CallID); err != nil || c.CallID != list[0].CallID || !c.Ended() {
		t.Fatalf("Call: %+v %v", c, err)
	}
	id, err := admin.StartCall(ctx, demo.SDKAppID, client.StartCall{Caller: "alice", Invitees: []string{"carol"}, Media: "audio"})
	if err != nil || id == "" {
		t.Fatalf("StartCall: %q %v", id, err)
	}
	sig, err := auth.GenUserSig(demo.SDKAppID, demo.SecretKey, "carol", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := client.NewUser(srv.URL(), sig, nil).Call(ctx, id); err != nil || c.State != "ringing" {
		t.Fatalf("User.Call: %+v %v", c, err)
	}
	if err := admin.CancelCall(ctx, demo.SDKAppID, id); err != nil {
		t.Fatalf("CancelCall: %v", err)
	}
	set, err := admin.Settings(ctx, demo.SDKAppID)
	if err != nil || set.LoginPolicy != "multi" {
		t.Fatalf("Settings: %+v %v", set, err)
	}
	set.LoginPolicy = "single"
	if got, err := admin.PutSettings(ctx, demo.SDKAppID, *set); err != nil || got.LoginPolicy != "single" {
		t.Fatalf("PutSettings: %+v %v", got, err)
	}
}

// TestCallInteractive answers a call by typing "a", then quits with "q".
func TestCallInteractive(t *testing.T) {
	hub := bus.NewHub()
	gw := gateway.New(gateway.Config{}, gatewaytest.NewFakeCalls(hub), hub, gatewaytest.Auth{}, gatewaytest.Policy{})
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	defer gw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stdin, typed := io.Pipe()
	callStdin = stdin
	defer func() { callStdin = os.Stdin; _ = typed.Close() }()
	bob := &cliRun{done: make(chan error, 1)}
	go func() {
		bob.done <- runCall(ctx, []string{"--url", srv.URL, "--usersig", "1:bob", "--user", "bob"}, &bob.out, &bob.errs)
	}()
	waitOutput(t, bob, "connected (session")
	alice := startCall(ctx, "--url", srv.URL, "--usersig", "1:alice", "--user", "alice", "--call", "bob", "--media", "video", "--hangup-after", "20ms")
	waitOutput(t, bob, "incoming video call from alice — [a]ccept [d]ecline [b]usy")
	fmt.Fprintln(typed, "a")
	waitOutput(t, bob, "accept: ok (answered)")
	alice.wait(t, "alice")
	waitOutput(t, bob, "call ended (hangup)")
	fmt.Fprintln(typed, "q")
	select {
	case err := <-bob.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not quit")
	}
}
