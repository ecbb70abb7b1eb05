package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringd/ringd/client"
)

// TestSeedFlow is the README's walkthrough: upload certificates, get
// certificate IDs, register development and production tokens, push, and
// see the notifications in the simulator's inboxes.
func TestSeedFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		e := startDev(t, database)
		ctx := ctxT(t)
		app := must[*client.App](t)(e.admin.CreateApp(ctx, "seed flow"))
		dev := e.uploadP12(t, app, "development", false)
		prod := e.uploadP12(t, app, "production", false)
		if len(dev) != 1 || len(prod) != 1 || dev[0].ID == prod[0].ID || dev[0].Environment != "development" || prod[0].Environment != "production" {
			t.Fatalf("certificate IDs: dev %+v prod %+v", dev, prod)
		}
		devTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
		prodTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "production", "alert"))
		alice := e.userFor(t, app, "alice")
		must[*client.Registration](t)(alice.SetAPNS(ctx, client.SetAPNS{BusinessID: dev[0].ID, Token: strings.ToUpper(devTok), DeviceID: "debug-phone"}))
		must[*client.Registration](t)(alice.SetAPNS(ctx, client.SetAPNS{BusinessID: prod[0].ID, Token: prodTok, DeviceID: "release-phone"}))

		res := must[*client.PushResult](t)(e.admin.Send(ctx, app.SDKAppID, client.Push{User: "alice", Title: "Hello", Body: "from ringd", Ext: `{"entity":{"action":2}}`, Sound: "default"}))
		trace := must[*client.Trace](t)(e.admin.WaitTrace(ctx, app.SDKAppID, res.PushID, nil))
		if trace.Status != "delivered" || len(trace.Devices) != 2 {
			t.Fatalf("trace: %s", dump(trace))
		}
		for _, tok := range []string{devTok, prodTok} {
			inbox := must[[]client.Notification](t)(e.sim.Inbox(ctx, tok))
			if len(inbox) != 1 {
				t.Fatalf("inbox of %s: %d notifications, want 1", tok[:8], len(inbox))
			}
			checkAlert(t, inbox[0])
		}
	})
}

func checkAlert(t *testing.T, n client.Notification) {
	t.Helper()
	h := n.Headers
	if h["apns-push-type"] != "alert" || h["apns-topic"] != bundle || h["apns-priority"] != "10" || h["apns-expiration"] == "" || h["apns-id"] == "" {
		t.Fatalf("headers: %v", h)
	}
	var p struct {
		APS struct {
			Alert struct{ Title, Body string } `json:"alert"`
			Sound string                       `json:"sound"`
		} `json:"aps"`
		Ext string `json:"ext"`
	}
	if err := json.Unmarshal(n.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.APS.Alert.Title != "Hello" || p.APS.Alert.Body != "from ringd" || p.APS.Sound != "default" || p.Ext != `{"entity":{"action":2}}` {
		t.Fatalf("payload: %s", n.Payload)
	}
}

// TestVoIPRingsOncePerPhone checks that a phone with an alert and a
// PushKit token gets one VoIP push, and a phone without one an alert.
func TestVoIPRingsOncePerPhone(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := must[*client.App](t)(e.admin.CreateApp(ctx, "voip"))
	dev := e.uploadP12(t, app, "development", false)
	voip := e.uploadP12(t, app, "both", true)
	if len(voip) != 2 || !voip[0].VoIP {
		t.Fatalf("VoIP upload with environment=both: %+v", voip)
	}
	voipDev := voip[0]
	if voipDev.Environment != "development" {
		voipDev = voip[1]
	}
	alertTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
	voipTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "voip"))
	otherTok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))
	bob := e.userFor(t, app, "bob")
	must[*client.Registration](t)(bob.SetAPNS(ctx, client.SetAPNS{BusinessID: dev[0].ID, Token: alertTok, DeviceID: "phone-1"}))
	reg := must[*client.Registration](t)(bob.SetAPNS(ctx, client.SetAPNS{BusinessID: voipDev.ID, Token: voipTok, DeviceID: "phone-1"}))
	if reg.Kind != "voip" {
		t.Fatalf("registration with a VoIP Services certificate has kind %q", reg.Kind)
	}
	must[*client.Registration](t)(bob.SetAPNS(ctx, client.SetAPNS{BusinessID: dev[0].ID, Token: otherTok, DeviceID: "ipad"}))

	res := must[*client.PushResult](t)(e.admin.Send(ctx, app.SDKAppID, client.Push{User: "bob", Title: "Incoming call", Body: "Alice", VoIP: true}))
	trace := must[*client.Trace](t)(e.admin.WaitTrace(ctx, app.SDKAppID, res.PushID, nil))
	if trace.Status != "delivered" || len(trace.Devices) != 2 {
		t.Fatalf("trace: %s", dump(trace))
	}
	voipInbox := must[[]client.Notification](t)(e.sim.Inbox(ctx, voipTok))
	alertInbox := must[[]client.Notification](t)(e.sim.Inbox(ctx, alertTok))
	ipadInbox := must[[]client.Notification](t)(e.sim.Inbox(ctx, otherTok))
	if len(voipInbox) != 1 || len(alertInbox) != 0 || len(ipadInbox) != 1 {
		t.Fatalf("phone-1 voip %d, phone-1 alert %d, ipad %d; want 1, 0, 1", len(voipInbox), len(alertInbox), len(ipadInbox))
	}
	if h := voipInbox[0].Headers; h["apns-push-type"] != "voip" || h["apns-topic"] != bundle+".voip" || h["apns-priority"] != "10" {
		t.Fatalf("VoIP headers: %v", h)
	}
	if h := ipadInbox[0].Headers; h["apns-push-type"] != "alert" {
		t.Fatalf("fallback headers: %v", h)
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
