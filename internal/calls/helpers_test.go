package calls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/clock"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
)

const testApp = 1400000001

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakePusher records what the service asks of the push pipeline.
type fakePusher struct {
	mu       sync.Mutex
	n        int
	staged   []submitted // staged, not yet committed or dropped
	submits  []submitted // committed with their change
	dropped  []string
	expiries []expiry
	fail     error
}

type submitted struct {
	ID   string
	App  int64
	User string
	Req  push.Request
	// Regs are the registrations the service passed; nil when it left the
	// pipeline to read them.
	Regs []store.Registration
}

type expiry struct {
	IDs    []string
	Reason string
}

// Stage validates the request and hands out a push ID; the push counts
// as submitted once Commit finds it written.
func (p *fakePusher) Stage(_ context.Context, sdkAppID int64, userID string, regs []store.Registration, req push.Request) (*push.Staged, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	if err := push.ValidateRequest(req); err != nil {
		return nil, err
	}
	p.n++
	id := fmt.Sprintf("push-%d", p.n)
	p.staged = append(p.staged, submitted{ID: id, App: sdkAppID, User: userID, Req: req, Regs: slices.Clone(regs)})
	return &push.Staged{ID: id}, nil
}

func (p *fakePusher) Commit(_ context.Context, groups [][]*push.Staged, write func() []bool) {
	written := write()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, g := range groups {
		for _, st := range g {
			j := slices.IndexFunc(p.staged, func(s submitted) bool { return s.ID == st.ID })
			if j < 0 {
				panic("fakePusher: Commit of a push it did not stage: " + st.ID)
			}
			if written[i] {
				p.submits = append(p.submits, p.staged[j])
			} else {
				p.dropped = append(p.dropped, st.ID)
			}
			p.staged = slices.Delete(p.staged, j, j+1)
		}
	}
}

func (p *fakePusher) Drop(staged []*push.Staged) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range staged {
		p.staged = slices.DeleteFunc(p.staged, func(s submitted) bool { return s.ID == st.ID })
		p.dropped = append(p.dropped, st.ID)
	}
}

// Pending lists the pushes staged and neither committed nor dropped: each
// would hold workers in the real pipeline.
func (p *fakePusher) Pending() []submitted {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.staged)
}

func (p *fakePusher) Expire(_ context.Context, ids []string, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiries = append(p.expiries, expiry{IDs: slices.Clone(ids), Reason: reason})
	return nil
}

func (p *fakePusher) Submits() []submitted {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.submits)
}

// to lists the pushes submitted for a user.
func (p *fakePusher) to(user string) []submitted {
	var out []submitted
	for _, s := range p.Submits() {
		if s.User == user {
			out = append(out, s)
		}
	}
	return out
}

func (p *fakePusher) Expiries() []expiry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.expiries)
}

// expired tells whether the push was expired, and why.
func (p *fakePusher) expired(id string) (string, bool) {
	for _, e := range p.Expiries() {
		if slices.Contains(e.IDs, id) {
			return e.Reason, true
		}
	}
	return "", false
}

type emitted struct {
	Type    string
	Payload any
}

type fakeEmitter struct {
	mu  sync.Mutex
	got []emitted
}

func (e *fakeEmitter) Emit(_ context.Context, _ int64, typ string, payload any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, emitted{typ, payload})
}

func (e *fakeEmitter) types() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, x := range e.got {
		if m, ok := x.Payload.(*Missed); ok {
			out = append(out, x.Type+":"+m.User)
			continue
		}
		out = append(out, x.Type)
	}
	return out
}

// env is a call service on a real SQLite store and bus, a fake pusher and
// a fake clock.
type env struct {
	t     testing.TB
	st    store.Store
	hub   *bus.Hub
	push  *fakePusher
	emit  *fakeEmitter
	clk   *clock.Fake
	reg   *prometheus.Registry
	svc   *Service
	cert  int64
	setMu sync.Mutex
	set   settings.Settings
	subs  map[string]*bus.Subscription // by user/device
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ringd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, st: st, hub: bus.NewHub(), push: &fakePusher{}, emit: &fakeEmitter{},
		clk: clock.NewFake(t0), set: settings.Defaults(), subs: map[string]*bus.Subscription{}}
	ctx := context.Background()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: testApp, Name: "test", SecretSealed: []byte("x"), CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	cert := &store.Certificate{SDKAppID: testApp, Type: "p12", Environment: store.EnvProduction, BundleID: "com.example.call",
		Topics: []string{"com.example.call", "com.example.call.voip"}, VoIP: true, ExpiresAt: t0.AddDate(1, 0, 0),
		SecretSealed: []byte{1}, CreatedAt: t0}
	if err := st.CreateCertificates(ctx, []*store.Certificate{cert}); err != nil {
		t.Fatal(err)
	}
	e.cert = cert.ID
	e.svc = e.newService()
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.svc.Close)
	return e
}

func (e *env) newService() *Service {
	e.reg = prometheus.NewRegistry()
	return New(Config{
		Clock: e.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: e.reg,
		Settings: func(context.Context, int64) (settings.Settings, error) {
			e.setMu.Lock()
			defer e.setMu.Unlock()
			return e.set, nil
		},
	}, e.st, e.hub, e.push, e.emit)
}

func (e *env) settings(f func(s *settings.Settings)) {
	e.setMu.Lock()
	defer e.setMu.Unlock()
	f(&e.set)
}

// register gives the user's device an APNs token of the kind (voip or
// alert); device "" makes a lone token.
func (e *env) register(user, device, kind string) string {
	e.t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	r := &store.Registration{SDKAppID: testApp, UserID: user, Token: tok, CertificateID: e.cert, Environment: store.EnvProduction,
		Kind: kind, DeviceID: device, RegisteredAt: e.clk.Now()}
	if _, err := e.st.PutRegistration(context.Background(), r, 10); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// connect opens a live session of the user's device in the given state.
func (e *env) connect(user, device, state string) *bus.Subscription {
	s := e.hub.Subscribe(testApp, user, device, state)
	e.subs[user+"/"+device] = s
	return s
}

// setState reports a device's app state as the gateway does: to the hub,
// then to the service.
func (e *env) setState(user, device, state string) {
	e.t.Helper()
	e.hub.SetState(e.sub(user, device), state)
	if err := e.svc.DeviceStateChanged(context.Background(), testApp, user, device, state); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) sub(user, device string) *bus.Subscription {
	s := e.subs[user+"/"+device]
	if s == nil {
		e.t.Fatalf("no session %s/%s", user, device)
	}
	return s
}

// events drains what the device's session received so far. Publishing is
// synchronous, so no waiting is needed.
func (e *env) events(user, device string) []Event {
	e.t.Helper()
	s := e.sub(user, device)
	var out []Event
	for {
		select {
		case m := <-s.C():
			if m.Kind != bus.KindEvent {
				continue
			}
			var ev Event
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				e.t.Fatalf("event JSON: %v", err)
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// types lists event types, each with its reason or user when set, like
// "call.rejected(busy)" or "call.timeout[bob]".
func types(evs []Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		s := ev.Type
		if ev.Reason != "" {
			s += "(" + ev.Reason + ")"
		}
		out = append(out, s)
	}
	return out
}

func (e *env) wantEvents(user, device string, want ...string) []Event {
	e.t.Helper()
	evs := e.events(user, device)
	if got := types(evs); !slices.Equal(got, want) {
		e.t.Errorf("%s/%s got events %q, want %q", user, device, got, want)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq && evs[i].CallID == evs[i-1].CallID {
			e.t.Errorf("%s/%s events out of order: %v", user, device, evs)
		}
	}
	return evs
}

func actor(user, device string) Actor {
	return Actor{SDKAppID: testApp, UserID: user, DeviceID: device}
}

func (e *env) invite(caller string, req InviteRequest) *Call {
	e.t.Helper()
	if req.Media == "" {
		req.Media = MediaAudio
	}
	c, err := e.svc.Invite(context.Background(), actor(caller, caller+"-phone"), req)
	if err != nil {
		e.t.Fatalf("invite: %v", err)
	}
	return c
}

// noErr returns v, panicking (failing the test) on an error.
func noErr[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if ce.Status == 0 || ce.Message == "" {
		t.Fatalf("error %#v lacks status or message", ce)
	}
}

func outcomes(c *Call) string {
	var parts []string
	for _, inv := range c.Invitees {
		parts = append(parts, inv.User+"="+inv.Outcome)
	}
	return strings.Join(parts, " ")
}

func (e *env) stored(id string) *Call {
	e.t.Helper()
	sc, err := e.st.Call(context.Background(), testApp, id)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := fromStore(sc)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.view()
}
