package storetest

import (
	"testing"

	"github.com/ringd/ringd/internal/store"
)

// OpenVersion opens the same database on every call, migrated by only the
// first n migrations (the schema of the release that knew n), or by all
// of them when n is 0. Upgrade closes each store before the next open.
type OpenVersion func(t *testing.T, n int) store.Store

// Upgrade checks that a database the first release (schema version 1)
// created and filled migrates to the current schema with its data kept,
// and that everything later versions added works on it.
func Upgrade(t *testing.T, open OpenVersion) {
	ctx := t.Context()

	old := open(t, 1)
	a := mustApp(t, old, app)
	cert := mustCert(t, old, app, store.EnvProduction)
	reg := newReg(app, "alice", "aa01", cert.ID, "phone", 1)
	mustPut(t, old, reg, 0)
	p, ds := mustPush(t, old, app, "push-1", "aa01", "aa02")
	if _, err := old.AppSettings(ctx, app); err == nil {
		t.Fatal("AppSettings worked on a version 1 schema: the store did not open the old version")
	}
	must(t, old.Close())

	s := open(t, 0)
	got, err := s.App(ctx, app)
	must(t, err)
	equal(t, "App after the upgrade", *got, *a)
	gotCert, err := s.Certificate(ctx, cert.ID)
	must(t, err)
	equal(t, "Certificate after the upgrade", *gotCert, *cert)
	gotReg, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	equal(t, "Registration after the upgrade", *gotReg, *reg)
	gotPush, err := s.Push(ctx, app, p.ID)
	must(t, err)
	equal(t, "Push after the upgrade", *gotPush, *p)
	gotDs, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	equal(t, "Deliveries after the upgrade", gotDs, deref(ds))

	// Version 2: settings default for existing apps, calls, sessions,
	// webhooks, and expiring the old outbox.
	settings, err := s.AppSettings(ctx, app)
	must(t, err)
	equal(t, "AppSettings of an existing app", string(settings), "{}")
	must(t, s.PutAppSettings(ctx, app, []byte(`{"sound":"bell.caf"}`)))
	c := mustCall(t, s, newCall(app, "call-1", "alice", 1, "bob"))
	must(t, s.PutSession(ctx, &store.Session{SDKAppID: app, UserID: "bob", DeviceID: "phone", ConnectedAt: at(1)}))
	mustWebhook(t, s, newWebhook(app, "e1", 0))
	n, err := s.ExpirePushes(ctx, []string{p.ID}, "call ended", at(2))
	must(t, err)
	equal(t, "expired deliveries of an old push", n, 2)
	must(t, s.Close())

	// Reopening a current database changes nothing.
	s = open(t, 0)
	defer s.Close()
	gotCall, err := s.Call(ctx, app, c.ID)
	must(t, err)
	equal(t, "Call after reopening", *gotCall, *c)
	settings, err = s.AppSettings(ctx, app)
	must(t, err)
	equal(t, "AppSettings after reopening", string(settings), `{"sound":"bell.caf"}`)
	ws, err := s.Webhooks(ctx, app, 0)
	must(t, err)
	equal(t, "Webhooks after reopening", eventIDs(ws), []string{"e1"})
}
