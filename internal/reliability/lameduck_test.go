package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/postgres"
	"github.com/ringd/ringd/internal/store/sqlite"
)

// TestLameDuck sends SIGTERM to a ringd with two SDK clients in a call
// and a slow APNs: it must refuse new connections, tell the clients to
// reconnect with a hint, finish the pushes in flight, leave the rest in
// the outbox and exit 0. A second ringd on the same data and port then
// serves the same clients, who never lose their call.
func TestLameDuck(t *testing.T) {
	forEachBackend(t, testLameDuck)
}

func testLameDuck(t *testing.T, database string) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const shutdownTimeout = 8 * time.Second
	sim := startSim(t)
	cfg := newRingdConfig(t, sim, database, "--shutdown-timeout", shutdownTimeout.String(), "--push-workers", "2")
	rd := cfg.start(t)
	f := newFixture(t, ctx, cfg)

	// A call in progress between two connected devices.
	f.register(t, ctx, "bob", "bob-phone", "alert")
	alice := f.connect(t, ctx, "alice", "alice-phone")
	bob := f.connect(t, ctx, "bob", "bob-phone")
	nextEvent(t, alice, 10*time.Second, client.EventSyncDone)
	nextEvent(t, bob, 10*time.Second, client.EventSyncDone)
	call, err := alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "video", Timeout: 60})
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	nextEvent(t, bob, 10*time.Second, client.EventInvited)
	if _, err := bob.Accept(ctx, call.CallID); err != nil {
		t.Fatalf("accept: %v", err)
	}
	nextEvent(t, alice, 10*time.Second, client.EventAccepted)

	// A slow APNs and two workers: pushes are in flight and queued when
	// the SIGTERM comes.
	if err := sim.api.SetFaults(ctx, map[string]any{"latency_ms": 1000}); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	var users []string
	for i := range 40 {
		u := fmt.Sprintf("p%03d", i)
		f.register(t, ctx, u, u+"-phone", "alert")
		users = append(users, u)
	}
	for range 3 {
		res, err := f.admin.Send(ctx, f.app.SDKAppID, client.Push{Users: users, Title: "before the restart"})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		l.add(kindPush, res.PushIDs...)
	}
	// Wait until the first requests are on their way to APNs.
	if err := waitFor(ctx, 10*time.Second, func() error {
		if n := sim.received(t, ctx, f); n == 0 {
			return errors.New("nothing sent yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	termAt := time.Now()
	if err := rd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Connected clients are told to reconnect, with a hint of when.
	for name, c := range map[string]*client.Conn{"alice": alice, "bob": bob} {
		ev := nextEvent(t, c, 5*time.Second, client.EventReconnectHint)
		if ev.AfterMS < 0 || ev.AfterMS > (shutdownTimeout/4).Milliseconds() {
			t.Errorf("%s: reconnect hint after %dms, want within the drain spread %v", name, ev.AfterMS, shutdownTimeout/4)
		}
	}
	// New connections are refused while draining.
	carol, err := client.Connect(ctx, client.ConnectOptions{BaseURL: f.url, UserSig: f.userSig(t, "carol"), DeviceID: "carol-phone"})
	var apiErr *client.Error
	switch {
	case err == nil:
		_ = carol.Close()
		t.Error("a new connection was accepted while draining")
	case errors.As(err, &apiErr) && (apiErr.Code != "draining" || apiErr.Status != 503):
		t.Errorf("new connection while draining: %v, want 503 draining", err)
	}
	t.Logf("a new connection while draining: %v", err)

	code := rd.exit(t, shutdownTimeout+10*time.Second)
	stoppedIn := time.Since(termAt)
	if code != 0 {
		t.Errorf("ringd exited %d after SIGTERM, want 0", code)
	}
	if stoppedIn > shutdownTimeout+2*time.Second {
		t.Errorf("ringd took %v to stop, deadline %v", stoppedIn, shutdownTimeout)
	}
	delivered := sim.received(t, ctx, f)
	left := outboxDepth(t, ctx, cfg)
	t.Logf("SIGTERM: exited %d in %v; %d deliveries reached APNs, %d left in the outbox", code, stoppedIn.Round(time.Millisecond), delivered, left)
	if left == 0 {
		t.Errorf("the outbox is empty after the shutdown: the test meant to leave pushes in it")
	}

	// The next instance, on the same data and port: APNs is well again.
	if err := sim.api.SetFaults(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cfg.start(t)
	for name, c := range map[string]*client.Conn{"alice": alice, "bob": bob} {
		nextEvent(t, c, 30*time.Second, client.EventConnected)
		ev := syncEventFor(t, c, call.CallID)
		if ev.Type != client.EventState || ev.Call == nil || ev.Call.State != "answered" {
			t.Errorf("%s: sync after the restart: %s %+v, want call.state answered", name, ev.Type, ev.Call)
		}
	}
	got, err := bob.GetCall(ctx, call.CallID)
	if err != nil || got.State != "answered" {
		t.Fatalf("the call after the restart: %+v, %v; want answered", got, err)
	}
	if _, err := bob.Hangup(ctx, call.CallID); err != nil {
		t.Fatalf("hang up after the restart: %v", err)
	}
	ended := nextEvent(t, alice, 10*time.Second, client.EventEnded)
	if ended.CallID != call.CallID {
		t.Errorf("alice heard call.ended of %s, want %s", ended.CallID, call.CallID)
	}

	res := audit(t, ctx, f, l, 2*time.Minute)
	checkTally(t, "lameduck/"+backendName(database), res)
	if res.Duplicates != 0 {
		t.Errorf("a graceful shutdown sent %d duplicates, want 0", res.Duplicates)
	}
}

// received counts the notifications every token of the fixture got.
func (s *simProc) received(t *testing.T, ctx context.Context, f *fixture) int {
	t.Helper()
	n := 0
	for _, toks := range f.tokens {
		for _, tok := range toks {
			inbox, err := s.api.Inbox(ctx, tok)
			if err != nil {
				t.Fatalf("inbox: %v", err)
			}
			n += len(inbox)
		}
	}
	return n
}

// outboxDepth opens the stopped ringd's database and counts the pending
// deliveries.
func outboxDepth(t *testing.T, ctx context.Context, cfg *ringdConfig) int {
	t.Helper()
	var st store.Store
	var err error
	if cfg.database == "" {
		st, err = sqlite.Open(ctx, filepath.Join(cfg.dataDir, "ringd.db"))
	} else {
		st, err = postgres.Open(ctx, cfg.database)
	}
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer st.Close()
	n, err := st.OutboxDepth(ctx)
	if err != nil {
		t.Fatalf("outbox depth: %v", err)
	}
	return n
}
