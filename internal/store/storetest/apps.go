package storetest

import (
	"fmt"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

func testApps(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	// Created out of order: Apps lists by SDKAppID.
	b := mustApp(t, s, 1400000002)
	a := mustApp(t, s, 1400000001)

	got, err := s.App(ctx, a.SDKAppID)
	must(t, err)
	equal(t, "App", *got, *a)

	apps, err := s.Apps(ctx)
	must(t, err)
	equal(t, "Apps", apps, []store.App{*a, *b})

	// A zero CreatedAt is the store's to fill.
	c := &store.App{SDKAppID: 1400000003, Name: "c"}
	must(t, s.CreateApp(ctx, c))
	if c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("CreateApp left times %v / %v", c.CreatedAt, c.UpdatedAt)
	}
	got, err = s.App(ctx, c.SDKAppID)
	must(t, err)
	equal(t, "App with filled times", *got, *c)
}

func testAppConflict(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	a := mustApp(t, s, 1400000001)
	err := s.CreateApp(ctx, &store.App{SDKAppID: a.SDKAppID, Name: "again", CreatedAt: at(5)})
	wantErr(t, "CreateApp on a taken ID", err, store.ErrConflict)
	got, err := s.App(ctx, a.SDKAppID)
	must(t, err)
	equal(t, "App after conflict", *got, *a)
}

func testUpdateAppSecret(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	a := mustApp(t, s, 1400000001)
	must(t, s.UpdateAppSecret(ctx, a.SDKAppID, []byte("new"), at(30)))
	got, err := s.App(ctx, a.SDKAppID)
	must(t, err)
	a.SecretSealed, a.UpdatedAt = []byte("new"), at(30)
	equal(t, "App after UpdateAppSecret", *got, *a)
}

// world is one app's worth of everything, for cascade tests.
type world struct {
	cert    *store.Certificate
	push    *store.Push
	ds      []*store.Delivery
	call    *store.Call
	webhook *store.Webhook
}

func mustWorld(t *testing.T, s store.Store, app int64) world {
	t.Helper()
	ctx := t.Context()
	mustApp(t, s, app)
	w := world{cert: mustCert(t, s, app, store.EnvProduction)}
	mustPut(t, s, newReg(app, "alice", "aa01", w.cert.ID, "", 1), 0)
	w.push, w.ds = mustPush(t, s, app, fmt.Sprint("push-", app), "aa01", "aa02")
	a := &store.Attempt{DeliveryID: w.ds[0].ID, PushID: w.push.ID, At: at(2), Status: 200}
	d := *w.ds[0]
	d.State, d.Attempts = store.DeliveryDelivered, 1
	must(t, s.FinishAttempt(ctx, a, &d))
	w.call = mustCall(t, s, newCall(app, fmt.Sprint("call-", app), "alice", 1, "bob"))
	must(t, s.PutSession(ctx, &store.Session{SDKAppID: app, UserID: "alice", DeviceID: "phone", ConnectedAt: at(1)}))
	must(t, s.PutAppSettings(ctx, app, []byte(`{"sound":"bell.caf"}`)))
	w.webhook = mustWebhook(t, s, newWebhook(app, fmt.Sprint("event-", app), 0))
	return w
}

func testDeleteApp(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	gone, kept := mustWorld(t, s, 1400000001), mustWorld(t, s, 1400000002)

	must(t, s.DeleteApp(ctx, 1400000001))

	_, err := s.App(ctx, 1400000001)
	wantErr(t, "App after DeleteApp", err, store.ErrNotFound)
	_, err = s.Certificate(ctx, gone.cert.ID)
	wantErr(t, "Certificate after DeleteApp", err, store.ErrNotFound)
	_, err = s.Registration(ctx, 1400000001, "aa01")
	wantErr(t, "Registration after DeleteApp", err, store.ErrNotFound)
	_, err = s.Push(ctx, 1400000001, gone.push.ID)
	wantErr(t, "Push after DeleteApp", err, store.ErrNotFound)
	ds, err := s.Deliveries(ctx, gone.push.ID)
	must(t, err)
	equal(t, "Deliveries after DeleteApp", len(ds), 0)
	as, err := s.Attempts(ctx, gone.push.ID)
	must(t, err)
	equal(t, "Attempts after DeleteApp", len(as), 0)
	_, err = s.Call(ctx, 1400000001, gone.call.ID)
	wantErr(t, "Call after DeleteApp", err, store.ErrNotFound)
	calls, err := s.CallsOfInvitee(ctx, 1400000001, "bob", at(0))
	must(t, err)
	equal(t, "CallsOfInvitee after DeleteApp", len(calls), 0)
	_, err = s.Session(ctx, 1400000001, "alice", "phone")
	wantErr(t, "Session after DeleteApp", err, store.ErrNotFound)
	_, err = s.AppSettings(ctx, 1400000001)
	wantErr(t, "AppSettings after DeleteApp", err, store.ErrNotFound)
	ws, err := s.Webhooks(ctx, 1400000001, 0)
	must(t, err)
	equal(t, "Webhooks after DeleteApp", len(ws), 0)

	// The other app is untouched.
	_, err = s.Registration(ctx, 1400000002, "aa01")
	must(t, err)
	ds, err = s.Deliveries(ctx, kept.push.ID)
	must(t, err)
	equal(t, "other app's deliveries", len(ds), 2)
	as, err = s.Attempts(ctx, kept.push.ID)
	must(t, err)
	equal(t, "other app's attempts", len(as), 1)
	n, err := s.OutboxDepth(ctx)
	must(t, err)
	equal(t, "OutboxDepth", n, 1)
	calls, err = s.ActiveCalls(ctx)
	must(t, err)
	equal(t, "ActiveCalls", calls, []store.Call{*kept.call})
	calls, err = s.Calls(ctx, 1400000002, store.CallFilter{UserID: "bob"})
	must(t, err)
	equal(t, "other app's calls", callIDs(calls), []string{kept.call.ID})
	_, err = s.Session(ctx, 1400000002, "alice", "phone")
	must(t, err)
	settings, err := s.AppSettings(ctx, 1400000002)
	must(t, err)
	equal(t, "other app's settings", string(settings), `{"sound":"bell.caf"}`)
	ws, err = s.ClaimWebhooks(ctx, at(1), at(61), 10)
	must(t, err)
	equal(t, "claimable webhooks", eventIDs(ws), []string{kept.webhook.EventID})
}
