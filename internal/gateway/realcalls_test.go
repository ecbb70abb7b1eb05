package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
)

type nopPusher struct {
	mu sync.Mutex
	n  int
}

func (p *nopPusher) Stage(context.Context, int64, string, []store.Registration, push.Request) (*push.Staged, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	return &push.Staged{ID: fmt.Sprint("push-", p.n)}, nil
}

func (p *nopPusher) Commit(_ context.Context, _ [][]*push.Staged, write func() []bool) { write() }

func (p *nopPusher) Drop([]*push.Staged) {}

func (p *nopPusher) Expire(context.Context, []string, string) error { return nil }

// newRealEnv runs the gateway on the real call service, a SQLite store and
// the in-process bus (only the push pipeline is fake).
func newRealEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ringd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: 1, Name: "test", SecretSealed: []byte("x"), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	hub := bus.NewHub()
	svc := calls.New(calls.Config{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Settings: func(context.Context, int64) (settings.Settings, error) { return settings.Defaults(), nil },
	}, st, hub, &nopPusher{}, nil)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, Config{}, hub, svc, nil)
	t.Cleanup(svc.Close) // after the gateway closed (cleanups run last-in first-out)
	return e
}

func eventOf(f map[string]any) map[string]any {
	ev, _ := f["event"].(map[string]any)
	return ev
}

// nextEvent reads frames until an event of type typ.
func nextEvent(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		f := readUntil(t, c, FrameEvent, "")
		if ev := eventOf(f); ev["type"] == typ {
			return ev
		}
	}
}

func TestRealServiceFullCallOnTwoDevices(t *testing.T) {
	e := newRealEnv(t)
	alice, _ := e.connect(t, "1:alice", "alice-phone")
	bobPhone, _ := e.connect(t, "1:bob", "bob-phone")
	bobPad, _ := e.connect(t, "1:bob", "bob-ipad")

	inv := request(t, alice, "inv-1", "invite", map[string]any{"invitees": []string{"bob"}, "media": "video", "timeout": 30})
	if inv["ok"] != true {
		t.Fatalf("invite %v", inv)
	}
	callID := callOf(t, inv)["call_id"].(string)
	for _, c := range []*websocket.Conn{bobPhone, bobPad} {
		ev := nextEvent(t, c, calls.EventInvited)
		if ev["call_id"] != callID || ev["time_left_ms"].(float64) <= 0 {
			t.Fatalf("invited %v", ev)
		}
	}
	// The same request id again: the same call, not a second one.
	if again := request(t, alice, "inv-1", "invite", map[string]any{"invitees": []string{"bob"}, "media": "video", "timeout": 30}); callOf(t, again)["call_id"] != callID {
		t.Fatalf("re-sent invite: %v", again)
	}
	// Only the caller may cancel.
	if r := request(t, bobPad, "c-1", "cancel", map[string]string{"call_id": callID}); errorCode(r) != calls.CodeNotCaller {
		t.Fatalf("bob cancels: %v", r)
	}
	if r := request(t, bobPhone, "acc-1", "accept", map[string]string{"call_id": callID}); r["ok"] != true || callOf(t, r)["state"] != calls.StateAnswered {
		t.Fatalf("accept %v", r)
	}
	if ev := nextEvent(t, alice, calls.EventAccepted); ev["user"] != "bob" {
		t.Fatalf("alice got %v", ev)
	}
	nextEvent(t, bobPad, calls.EventAnsweredElsewhere)
	if r := request(t, bobPad, "acc-2", "accept", map[string]string{"call_id": callID}); r["ok"] != false {
		t.Fatalf("second accept from another device: %v", r)
	}
	if r := request(t, alice, "hup-1", "hangup", map[string]string{"call_id": callID}); r["ok"] != true {
		t.Fatalf("hangup %v", r)
	}
	for _, c := range []*websocket.Conn{alice, bobPhone} {
		if ev := nextEvent(t, c, calls.EventEnded); ev["call_id"] != callID {
			t.Fatalf("ended %v", ev)
		}
	}
	if r := request(t, alice, "get-1", "get_call", map[string]string{"call_id": callID}); callOf(t, r)["state"] != calls.StateEnded {
		t.Fatalf("get_call %v", r)
	}
}

func TestRealServiceSyncOnReconnect(t *testing.T) {
	e := newRealEnv(t)
	alice, _ := e.connect(t, "1:alice", "alice-phone")
	bob, _ := e.connect(t, "1:bob", "bob-phone")
	_ = bob.Close(websocket.StatusNormalClosure, "app killed")
	checkFor(t, 5*time.Second, func() error {
		if n := len(e.hub.Sessions(1, "bob")); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	inv := request(t, alice, "inv-1", "invite", map[string]any{"invitees": []string{"bob"}, "media": "audio"})
	callID := callOf(t, inv)["call_id"].(string)

	// Woken by the push, bob's app connects: the ringing call comes in the
	// sync, before sync_done.
	c := e.dial(t, "1:bob", "bob-phone")
	if f := readFrame(t, c); f["type"] != FrameHello {
		t.Fatalf("first frame %v", f)
	}
	f := readFrame(t, c)
	ev := eventOf(f)
	if ev["type"] != calls.EventInvited || ev["call_id"] != callID || ev["time_left_ms"].(float64) <= 0 {
		t.Fatalf("sync event %v", f)
	}
	if f := readFrame(t, c); f["type"] != FrameSyncDone || f["events"] != float64(1) {
		t.Fatalf("after the sync: %v", f)
	}
	if r := request(t, c, "rej-1", "reject", map[string]string{"call_id": callID, "reason": "busy"}); r["ok"] != true {
		t.Fatalf("reject %v", r)
	}
	if ev := nextEvent(t, alice, calls.EventRejected); ev["reason"] != "busy" {
		t.Fatalf("alice got %v", ev)
	}
	nextEvent(t, alice, calls.EventEnded)
}
