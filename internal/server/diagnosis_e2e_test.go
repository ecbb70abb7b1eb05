package server_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
)

// TestBadDeviceToken is the seed's FAQ 1: a Debug build's token registered
// with the production certificate ID.
func TestBadDeviceToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		e := startDev(t, database)
		ctx := ctxT(t)
		app := must[*client.App](t)(e.admin.CreateApp(ctx, "faq1"))
		dev := e.uploadP12(t, app, "development", false)[0]
		prod := e.uploadP12(t, app, "production", false)[0]
		devTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
		alice := e.userFor(t, app, "alice")
		must[*client.Registration](t)(alice.SetAPNS(ctx, client.SetAPNS{BusinessID: prod.ID, Token: devTok}))

		res := must[*client.PushResult](t)(e.admin.Send(ctx, app.SDKAppID, client.Push{User: "alice", Title: "t", Body: "b"}))
		trace := must[*client.Trace](t)(e.admin.WaitTrace(ctx, app.SDKAppID, res.PushID, nil))
		if len(trace.Devices) != 1 || len(trace.Devices[0].Attempts) == 0 {
			t.Fatalf("trace: %s", dump(trace))
		}
		first := trace.Devices[0].Attempts[0]
		if first.Reason != "BadDeviceToken" || first.Environment != "production" || first.CertificateID != prod.ID {
			t.Fatalf("first attempt: %s", dump(first))
		}
		if !strings.Contains(first.Diagnosis, "bad devicetoken") || !strings.Contains(first.Diagnosis, fmt.Sprint(dev.ID)) {
			t.Fatalf("diagnosis does not name bad devicetoken and certificate %d: %q", dev.ID, first.Diagnosis)
		}
		// ringd retried through the development certificate and corrected
		// the registration; the token was never deleted.
		if trace.Status != "delivered" {
			t.Fatalf("status %q, want delivered through the development certificate: %s", trace.Status, dump(trace))
		}
		regs := must[[]client.Registration](t)(alice.Registrations(ctx))
		if len(regs) != 1 || regs[0].CertificateID != dev.ID || regs[0].Environment != "development" {
			t.Fatalf("registration after the retry: %s", dump(regs))
		}
		if n := must[[]client.Notification](t)(e.sim.Inbox(ctx, devTok)); len(n) != 1 {
			t.Fatalf("inbox has %d notifications, want 1", len(n))
		}
	})
}

// TestBadDeviceTokenWithoutOtherCertificate: with no development
// certificate to fall back on, the diagnosis says to upload one and the
// token is kept.
func TestBadDeviceTokenWithoutOtherCertificate(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := must[*client.App](t)(e.admin.CreateApp(ctx, "faq1-missing"))
	prod := e.uploadP12(t, app, "production", false)[0]
	devTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
	alice := e.userFor(t, app, "alice")
	must[*client.Registration](t)(alice.SetAPNS(ctx, client.SetAPNS{BusinessID: prod.ID, Token: devTok}))
	res := must[*client.PushResult](t)(e.admin.Send(ctx, app.SDKAppID, client.Push{User: "alice", Title: "t", Body: "b"}))
	trace := must[*client.Trace](t)(e.admin.WaitTrace(ctx, app.SDKAppID, res.PushID, nil))
	if trace.Status != "failed" || len(trace.Devices) != 1 {
		t.Fatalf("trace: %s", dump(trace))
	}
	d := trace.Devices[0].Attempts[len(trace.Devices[0].Attempts)-1].Diagnosis
	if !strings.Contains(d, "bad devicetoken") || !strings.Contains(strings.ToLower(d), "upload") {
		t.Fatalf("diagnosis %q should say bad devicetoken and to upload a development certificate", d)
	}
	regs := must[[]client.Registration](t)(alice.Registrations(ctx))
	if len(regs) != 1 || regs[0].LastFailureReason != "BadDeviceToken" {
		t.Fatalf("registration must be kept with its failure: %s", dump(regs))
	}
}

// TestUninstalledApp: 410 removes a registration made before Apple's
// timestamp and keeps one made after it.
func TestUninstalledApp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		e := startDev(t, database)
		ctx := ctxT(t)
		app := must[*client.App](t)(e.admin.CreateApp(ctx, "410"))
		dev := e.uploadP12(t, app, "development", false)[0]
		tok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
		carol := e.userFor(t, app, "carol")
		reg := must[*client.Registration](t)(carol.SetAPNS(ctx, client.SetAPNS{BusinessID: dev.ID, Token: tok}))
		// Apple's timestamps are in milliseconds and a registration in the
		// same millisecond is kept; let the clock pass it first.
		for time.Now().UnixMilli() <= reg.RegisteredAt.UnixMilli() {
			runtime.Gosched()
		}
		if err := e.sim.Uninstall(ctx, tok); err != nil {
			t.Fatal(err)
		}
		push := func() *client.Trace {
			res := must[*client.PushResult](t)(e.admin.Send(ctx, app.SDKAppID, client.Push{User: "carol", Title: "t", Body: "b"}))
			return must[*client.Trace](t)(e.admin.WaitTrace(ctx, app.SDKAppID, res.PushID, nil))
		}
		trace := push()
		a := trace.Devices[0].Attempts[0]
		if trace.Status != "failed" || a.Status != 410 || a.Reason != "Unregistered" || a.Classification != "token_dead" {
			t.Fatalf("trace: %s", dump(trace))
		}
		if regs := must[[]client.Registration](t)(carol.Registrations(ctx)); len(regs) != 0 {
			t.Fatalf("registration should be removed after 410: %s", dump(regs))
		}
		// Registered again after the uninstall time: Apple's rule keeps it.
		must[*client.Registration](t)(carol.SetAPNS(ctx, client.SetAPNS{BusinessID: dev.ID, Token: tok}))
		trace = push()
		if trace.Devices[0].Attempts[0].Status != 410 {
			t.Fatalf("trace: %s", dump(trace))
		}
		if regs := must[[]client.Registration](t)(carol.Registrations(ctx)); len(regs) != 1 {
			t.Fatalf("a registration newer than the 410 timestamp must be kept: %s", dump(regs))
		}
	})
}
