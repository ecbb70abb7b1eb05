package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/webhooks"
)

// hookSink records the webhooks an app server would receive.
type hookSink struct {
	mu     sync.Mutex
	events []map[string]any
	bad    int
}

func (h *hookSink) handler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !webhooks.Verify(secret, body, r.Header.Get("X-Ringd-Signature")) || r.Header.Get("X-Ringd-Delivery") == "" {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		h.events = append(h.events, ev)
	})
}

func (h *hookSink) types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e["type"].(string))
	}
	return out
}

func (h *hookSink) waitFor(t *testing.T, types ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		have := map[string]bool{}
		for _, ty := range h.types() {
			have[ty] = true
		}
		missing := false
		for _, ty := range types {
			missing = missing || !have[ty]
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling an outside receiver
	}
	t.Fatalf("webhooks received %v, want %v (bad signatures: %d)", h.types(), types, h.bad)
}

// An app server starts a call over REST, follows it, and receives signed
// webhooks; a woken app reads the call over plain HTTP.
func TestAppServerCallsAndWebhooks(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	sink := &hookSink{}
	hooks := httptest.NewServer(sink.handler(app.SecretKey))
	t.Cleanup(hooks.Close)
	st := must[*client.Settings](t)(e.admin.Settings(ctx, app.SDKAppID))
	st.WebhookURL = hooks.URL
	must[*client.Settings](t)(e.admin.PutSettings(ctx, app.SDKAppID, *st))
	bob := e.connect(t, app, "bob", "bob-phone", "foreground")

	callID := must[string](t)(e.admin.StartCall(ctx, app.SDKAppID, client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "audio", RoomID: "r1"}))
	waitEvent(t, bob, "call.invited", callID)
	mine := must[*client.Call](t)(e.userFor(t, app.App, "bob").Call(ctx, callID))
	if mine.State != "ringing" || mine.Caller != "alice" {
		t.Fatalf("GET /v1/me/calls: %s", dump(mine))
	}
	_, err := e.userFor(t, app.App, "mallory").Call(ctx, callID)
	wantCode(t, err, "not_participant")

	must[*client.Call](t)(bob.Accept(ctx, callID))
	must[*client.Call](t)(bob.Hangup(ctx, callID))
	got := must[*client.Call](t)(e.admin.Call(ctx, app.SDKAppID, callID))
	if got.State != "ended" || got.EndReason != "hangup" || outcomeOf(got, "bob") != "left" {
		t.Fatalf("GET call: %s", dump(got))
	}
	list := must[[]client.Call](t)(e.admin.Calls(ctx, app.SDKAppID, client.CallQuery{User: "bob"}))
	if len(list) != 1 || list[0].CallID != callID {
		t.Fatalf("calls of bob: %s", dump(list))
	}
	sink.waitFor(t, "call.started", "call.answered", "call.ended")

	// Cancelling an ended call is refused with a stable code.
	wantCode(t, e.admin.CancelCall(ctx, app.SDKAppID, callID), "call_ended")
	second := must[string](t)(e.admin.StartCall(ctx, app.SDKAppID, client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "video"}))
	if err := e.admin.CancelCall(ctx, app.SDKAppID, second); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bob, "call.cancelled", second)
	sink.waitFor(t, "call.missed")

	// An answered call whose apps went away is ended by the app server.
	third := must[string](t)(e.admin.StartCall(ctx, app.SDKAppID, client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "audio"}))
	waitEvent(t, bob, "call.invited", third)
	must[*client.Call](t)(bob.Accept(ctx, third))
	if err := e.admin.EndCall(ctx, app.SDKAppID, third); err != nil {
		t.Fatal(err)
	}
	ended := waitEvent(t, bob, "call.ended", third)
	if ended.Reason != "ended_by_server" || ended.Call.UUID == "" || ended.Call.Timeout == 0 {
		t.Fatalf("server-ended call: %+v %s", ended, dump(ended.Call))
	}
	wantCode(t, e.admin.EndCall(ctx, app.SDKAppID, third), "call_ended")
}

// An app's existence is checked through the settings cache; deleting the
// app through this node makes it unknown at once, not after the cache's TTL.
func TestDeletedAppIsGoneAtOnce(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	start := client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "audio"}
	must[string](t)(e.admin.StartCall(ctx, app.SDKAppID, start)) // the app's settings are now cached
	if err := e.admin.DeleteApp(ctx, app.SDKAppID); err != nil {
		t.Fatal(err)
	}
	_, err := e.admin.StartCall(ctx, app.SDKAppID, start)
	wantCode(t, err, "app_not_found")
	_, err = e.admin.Calls(ctx, app.SDKAppID, client.CallQuery{})
	wantCode(t, err, "app_not_found")
}
