package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
)

// callApp is an app with development alert and VoIP certificates.
type callApp struct {
	*client.App
	alertID, voipID int64
}

func (e *env) newCallApp(t *testing.T) callApp {
	t.Helper()
	app := must[*client.App](t)(e.admin.CreateApp(ctxT(t), "calls"))
	ca := callApp{App: app, alertID: e.uploadP12(t, app, "development", false)[0].ID}
	for _, c := range e.uploadP12(t, app, "both", true) {
		if c.Environment == "development" {
			ca.voipID = c.ID
		}
	}
	return ca
}

// registerDevice mints a token of kind ("alert" or "voip") in the
// simulator and registers it for user's device.
func (e *env) registerDevice(t *testing.T, app callApp, user, deviceID, kind string) string {
	t.Helper()
	ctx := ctxT(t)
	tok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", kind))
	id := app.alertID
	if kind == "voip" {
		id = app.voipID
	}
	must[*client.Registration](t)(e.userFor(t, app.App, user).SetAPNS(ctx, client.SetAPNS{BusinessID: id, Token: tok, DeviceID: deviceID}))
	return tok
}

// connect opens a gateway connection of user's device.
func (e *env) connect(t *testing.T, app callApp, user, deviceID, state string) *client.Conn {
	t.Helper()
	sig, err := auth.GenUserSig(app.SDKAppID, app.SecretKey, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(ctxT(t), client.ConnectOptions{BaseURL: e.srv.URL(), UserSig: sig, DeviceID: deviceID, State: state})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", user, deviceID, err)
	}
	t.Cleanup(func() { c.Close() })
	waitEvent(t, c, "sync_done", "")
	return c
}

// waitEvent reads c's events until one of type typ (and call callID, when
// set) arrives, failing after a deadline.
func waitEvent(t *testing.T, c *client.Conn, typ, callID string) client.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	var seen []string
	for {
		select {
		case ev := <-c.Events():
			if ev.Type == typ && (callID == "" || ev.CallID == callID) {
				return ev
			}
			seen = append(seen, ev.Type)
		case <-deadline:
			t.Fatalf("no %s event for call %q; saw %v", typ, callID, seen)
		}
	}
}

// waitInbox polls the simulator until the device received n notifications.
func (e *env) waitInbox(t *testing.T, token string, n int) []client.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		got, err := e.sim.Inbox(ctx, token)
		if err == nil && len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("inbox of %s…: %d notifications, want %d (err %v)", token[:8], len(got), n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func outcomeOf(c *client.Call, user string) string {
	for _, inv := range c.Invitees {
		if inv.User == user {
			return inv.Outcome
		}
	}
	return ""
}

// connectRaw is connect without waiting for sync_done, so the sync events
// stay in the channel for the test to read.
func (e *env) connectRaw(t *testing.T, app callApp, user, deviceID string) *client.Conn {
	t.Helper()
	sig, err := auth.GenUserSig(app.SDKAppID, app.SecretKey, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(ctxT(t), client.ConnectOptions{BaseURL: e.srv.URL(), UserSig: sig, DeviceID: deviceID})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", user, deviceID, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
