package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/gateway"
	"github.com/ringd/ringd/internal/gateway/gatewaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a gateway with the fake call service behind an httptest server
// whose handler can be switched (a load balancer moving to a new node).
type env struct {
	hub   *bus.Hub
	calls *gatewaytest.FakeCalls
	gw    atomic.Pointer[gateway.Gateway]
	srv   *httptest.Server
	svc   gateway.CallService
}

func newEnv(t *testing.T, wrap func(gateway.CallService) gateway.CallService) *env {
	t.Helper()
	e := &env{hub: bus.NewHub()}
	e.calls = gatewaytest.NewFakeCalls(e.hub)
	e.svc = e.calls
	if wrap != nil {
		e.svc = wrap(e.calls)
	}
	e.gw.Store(e.newGateway(t))
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.gw.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) newGateway(t *testing.T) *gateway.Gateway {
	gw := gateway.New(gateway.Config{HeartbeatTimeout: 3 * time.Second}, e.svc, e.hub, gatewaytest.Auth{}, gatewaytest.Policy{})
	t.Cleanup(gw.Close)
	return gw
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) connect(t *testing.T, sig, device string, mod ...func(*client.ConnectOptions)) *client.Conn {
	t.Helper()
	opts := client.ConnectOptions{BaseURL: e.srv.URL, UserSig: sig, DeviceID: device, ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}
	for _, f := range mod {
		f(&opts)
	}
	c, err := client.Connect(ctxT(t), opts)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// next returns the next event of one of the types (skipping others).
func next(t *testing.T, c *client.Conn, types ...string) client.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("Events closed waiting for %v (Err %v)", types, c.Err())
			}
			if slices.Contains(types, ev.Type) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event", types)
		}
	}
}

func TestConnFullCall(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.connect(t, "1:alice", "alice-phone")
	bob := e.connect(t, "1:bob", "bob-phone")
	for _, c := range []*client.Conn{alice, bob} {
		if ev := next(t, c, client.EventConnected); ev.SessionID == "" || ev.SessionID != c.SessionID() {
			t.Fatalf("connected %+v", ev)
		}
		next(t, c, client.EventSyncDone)
	}
	ctx := ctxT(t)
	call, err := alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "video"})
	if err != nil {
		t.Fatal(err)
	}
	inv := next(t, bob, client.EventInvited)
	if inv.CallID != call.CallID || inv.Call == nil || inv.Call.Caller != "alice" || inv.Call.Media != "video" || inv.Seq != 1 {
		t.Fatalf("bob got %+v", inv)
	}
	if _, err := bob.Accept(ctx, call.CallID); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, alice, client.EventAccepted); ev.User != "bob" || ev.DeviceID != "bob-phone" {
		t.Fatalf("alice got %+v", ev)
	}
	got, err := alice.GetCall(ctx, call.CallID)
	if err != nil || got.State != "answered" {
		t.Fatalf("GetCall: %+v %v", got, err)
	}
	ended, err := alice.Hangup(ctx, call.CallID)
	if err != nil || !ended.Ended() {
		t.Fatalf("Hangup: %+v %v", ended, err)
	}
	for _, c := range []*client.Conn{alice, bob} {
		if ev := next(t, c, client.EventEnded); ev.Reason != "hangup" || !ev.Call.Ended() {
			t.Fatalf("ended %+v", ev)
		}
	}
	if err := bob.SetState(ctx, "background"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.calls.States(), "bob/bob-phone/background") {
		t.Fatalf("states %v", e.calls.States())
	}
	if _, err := alice.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConnErrors(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.connect(t, "1:alice", "phone")
	_, err := alice.Accept(ctxT(t), "nope")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != calls.CodeCallNotFound || ce.Message == "" {
		t.Fatalf("Accept: %v", err)
	}
	_, err = alice.Reject(ctxT(t), "c", "maybe")
	if !errors.As(err, &ce) || ce.Code != gateway.CodeBadData {
		t.Fatalf("Reject: %v", err)
	}

	_, err = client.Connect(ctxT(t), client.ConnectOptions{BaseURL: e.srv.URL, UserSig: "expired", DeviceID: "d"})
	if !errors.As(err, &ce) || ce.Status != 401 || ce.Code != "usersig_expired" {
		t.Fatalf("Connect with an expired UserSig: %v", err)
	}
	if _, err := client.Connect(ctxT(t), client.ConnectOptions{BaseURL: e.srv.URL, UserSig: "1:alice"}); err == nil {
		t.Fatal("Connect without DeviceID worked")
	}
}

// cutter records the client's TCP connections so a test can cut them.
type cutter struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (c *cutter) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
		}
		return conn, err
	}}}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

// slowInvite blocks the first Invite until released.
type slowInvite struct {
	gateway.CallService
	entered chan struct{}
	release chan struct{}
	n       atomic.Int32
}

func (s *slowInvite) Invite(ctx context.Context, a calls.Actor, req calls.InviteRequest) (*calls.Call, error) {
	if s.n.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.CallService.Invite(ctx, a, req)
}

func TestConnResendsUnansweredRequestWithSameID(t *testing.T) {
	slow := &slowInvite{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(s gateway.CallService) gateway.CallService { slow.CallService = s; return slow })
	defer close(slow.release)
	var cut cutter
	alice := e.connect(t, "1:alice", "phone", func(o *client.ConnectOptions) { o.HTTPClient = cut.client() })
	next(t, alice, client.EventSyncDone)

	type result struct {
		call *client.Call
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := alice.Invite(context.Background(), client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"})
		done <- result{c, err}
	}()
	<-slow.entered
	first := alice.SessionID()
	cut.cut() // the connection dies before the reply
	next(t, alice, client.EventDisconnected)
	if ev := next(t, alice, client.EventConnected); ev.SessionID == first {
		t.Fatal("same session after a reconnect")
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Invite did not return after the reconnect")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	actors := e.calls.Actors()
	if len(actors) != 1 {
		t.Fatalf("actors %+v", actors)
	}
	slow.release <- struct{}{} // the first attempt finishes now, answered from the idempotency record
	checkFor(t, func() error {
		actors = e.calls.Actors()
		if len(actors) != 2 {
			return fmt.Errorf("%d invites seen", len(actors))
		}
		return nil
	})
	if actors[0].RequestID != actors[1].RequestID || actors[0].RequestID == "" {
		t.Fatalf("re-sent with another id: %q, %q", actors[0].RequestID, actors[1].RequestID)
	}
	got, err := alice.GetCall(ctxT(t), r.call.CallID)
	if err != nil || got.CallID != r.call.CallID {
		t.Fatalf("GetCall %v %v", got, err)
	}
}

func checkFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnKickedDoesNotReconnect(t *testing.T) {
	e := newEnv(t, nil)
	phone := e.connect(t, "2:alice", "phone") // app 2 is single-login
	next(t, phone, client.EventSyncDone)
	ipad := e.connect(t, "2:alice", "ipad")
	ev := next(t, phone, client.EventKicked)
	if ev.Reason != "logged_in_elsewhere" || ev.DeviceID != "ipad" {
		t.Fatalf("kicked %+v", ev)
	}
	select {
	case <-phone.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked Conn did not finish")
	}
	if !errors.Is(phone.Err(), client.ErrKicked) {
		t.Fatalf("Err = %v", phone.Err())
	}
	for range phone.Events() { // closed
	}
	if _, err := phone.Ping(ctxT(t)); !errors.Is(err, client.ErrKicked) {
		t.Fatalf("request after a kick: %v", err)
	}
	if _, err := ipad.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.hub.Sessions(2, "alice")); n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

func TestConnFollowsReconnectHint(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.connect(t, "1:alice", "phone")
	first := next(t, alice, client.EventConnected).SessionID
	old := e.gw.Load()
	e.gw.Store(e.newGateway(t)) // new connections go to the new node
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		old.Drain(context.Background(), 0)
	}()
	if ev := next(t, alice, client.EventReconnectHint); ev.AfterMS != 0 {
		t.Fatalf("hint %+v", ev)
	}
	if ev := next(t, alice, client.EventConnected); ev.SessionID == first {
		t.Fatalf("still on session %s", first)
	}
	<-drained
	if e.gw.Load().Connections() != 1 || old.Connections() != 0 {
		t.Fatalf("connections new %d old %d", e.gw.Load().Connections(), old.Connections())
	}
	if _, err := alice.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestConnEventsDropOldest(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.connect(t, "1:alice", "phone", func(o *client.ConnectOptions) { o.EventBuffer = 4 })
	for i := range 20 {
		payload := fmt.Appendf(nil, `{"type":"call.state","call_id":"c%d","seq":1,"call":null}`, i)
		e.hub.Publish(1, "alice", bus.Message{Kind: bus.KindEvent, Payload: payload})
	}
	checkFor(t, func() error {
		if alice.DroppedEvents() != 18 { // connected, sync_done and 20 events into 4 slots
			return fmt.Errorf("%d dropped", alice.DroppedEvents())
		}
		return nil
	})
	var ids []string
	for len(ids) < 4 {
		ids = append(ids, (<-alice.Events()).CallID)
	}
	if !slices.Equal(ids, []string{"c16", "c17", "c18", "c19"}) {
		t.Fatalf("kept %v, want the newest", ids)
	}
}

func TestConnCloseAndLogout(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect(t, "1:alice", "phone")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(a.Err(), client.ErrClosed) {
		t.Fatalf("Err %v", a.Err())
	}
	if _, err := a.Ping(ctxT(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}

	b := e.connect(t, "1:alice", "ipad")
	if err := b.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(b.Err(), client.ErrLoggedOut) {
		t.Fatalf("Err %v", b.Err())
	}
	if !slices.Contains(e.calls.Unbound(), "alice/ipad") {
		t.Fatalf("unbound %v", e.calls.Unbound())
	}
	checkFor(t, func() error {
		if n := e.hub.Count(); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
}
