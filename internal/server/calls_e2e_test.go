package server_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/clock"
)

func pushesOf(c *client.Call, user, kind string) int {
	n := 0
	for _, inv := range c.Invitees {
		if inv.User != user {
			continue
		}
		for _, p := range inv.Pushes {
			if p.Kind == kind {
				n++
			}
		}
	}
	return n
}

// Alice calls Bob, who is offline with a VoIP registration: one VoIP push,
// then Bob connects, gets the pending invitation and accepts.
func TestCallRingsOfflineByVoIP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		e := startDev(t, database)
		ctx := ctxT(t)
		app := e.newCallApp(t)
		bobTok := e.registerDevice(t, app, "bob", "bob-phone", "voip")
		alice := e.connect(t, app, "alice", "alice-phone", "foreground")

		call := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "video", Timeout: 60, RoomID: "4242", CallerName: "Alice"}))
		inbox := e.waitInbox(t, bobTok, 1)
		h := inbox[0].Headers
		if h["apns-push-type"] != "voip" || h["apns-topic"] != bundle+".voip" || h["apns-priority"] != "10" {
			t.Fatalf("VoIP push headers: %v", h)
		}
		exp, _ := strconv.ParseInt(h["apns-expiration"], 10, 64)
		if left := time.Until(time.Unix(exp, 0)); left <= 0 || left > 61*time.Second {
			t.Fatalf("apns-expiration %s is not the ring deadline (%v left)", h["apns-expiration"], left)
		}
		var p struct {
			CallID    string `json:"call_id"`
			UUID      string `json:"uuid"`
			Caller    string `json:"caller"`
			Media     string `json:"media"`
			ExpiresAt int64  `json:"expires_at"`
			Ext       string `json:"ext"`
		}
		if err := json.Unmarshal(inbox[0].Payload, &p); err != nil {
			t.Fatal(err)
		}
		var ext struct {
			Entity struct {
				Action  int    `json:"action"`
				Sender  string `json:"sender"`
				Content string `json:"content"`
			} `json:"entity"`
		}
		if err := json.Unmarshal([]byte(p.Ext), &ext); err != nil {
			t.Fatalf("ext is not the TUICallKit entity JSON: %v (%q)", err, p.Ext)
		}
		if p.CallID != call.CallID || p.UUID == "" || p.Caller != "alice" || p.Media != "video" || p.ExpiresAt == 0 ||
			ext.Entity.Action != 2 || ext.Entity.Sender != "alice" || !strings.Contains(ext.Entity.Content, call.CallID) {
			t.Fatalf("VoIP payload: %s", inbox[0].Payload)
		}

		// Bob's app, woken by the push, connects: the pending invitation
		// comes with the sync, before sync_done.
		bob := e.connectRaw(t, app, "bob", "bob-phone")
		ev := waitEvent(t, bob, "call.invited", call.CallID)
		waitEvent(t, bob, "sync_done", "")
		if ev.TimeLeftMS <= 0 {
			t.Fatalf("pending invitation without time left: %+v", ev)
		}
		must[*client.Call](t)(bob.Accept(ctx, call.CallID))
		waitEvent(t, alice, "call.accepted", call.CallID)
		got := must[*client.Call](t)(alice.GetCall(ctx, call.CallID))
		if got.State != "answered" || outcomeOf(got, "bob") != "accepted" || pushesOf(got, "bob", "ring") != 1 || pushesOf(got, "bob", "missed") != 0 {
			t.Fatalf("call after accept: %s", dump(got))
		}
	})
}

// Bob offline with only an alert registration: an alert rings him; Alice
// cancels; Bob gets a missed-call alert and, on connect, the cancelled state.
func TestCallAlertThenCancelled(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	bobTok := e.registerDevice(t, app, "bob", "bob-phone", "alert")
	alice := e.connect(t, app, "alice", "alice-phone", "foreground")
	call := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"}))
	ring := e.waitInbox(t, bobTok, 1)[0]
	if h := ring.Headers; h["apns-push-type"] != "alert" || h["apns-collapse-id"] != call.CallID {
		t.Fatalf("alert ring headers: %v", h)
	}
	if !strings.Contains(string(ring.Payload), "You have a new call") {
		t.Fatalf("alert ring payload: %s", ring.Payload)
	}
	must[*client.Call](t)(alice.Cancel(ctx, call.CallID))
	missed := e.waitInbox(t, bobTok, 2)[1]
	if !strings.Contains(string(missed.Payload), "Missed call from") || missed.Headers["apns-push-type"] != "alert" {
		t.Fatalf("missed-call push: %v %s", missed.Headers, missed.Payload)
	}
	bob := e.connectRaw(t, app, "bob", "bob-phone")
	ev := waitEvent(t, bob, "call.state", call.CallID)
	if ev.Call == nil || ev.Call.State != "ended" || ev.Call.EndReason != "cancelled" || outcomeOf(ev.Call, "bob") != "cancelled" {
		t.Fatalf("sync after cancel: %+v", ev)
	}
	waitEvent(t, bob, "sync_done", "")
}

// Bob on two devices: both ring, one accepts, the other is told
// answered_elsewhere; no missed-call push.
func TestCallTwoDevicesFirstAcceptWins(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	e.registerDevice(t, app, "bob", "bob-phone", "alert")
	e.registerDevice(t, app, "bob", "bob-ipad", "alert")
	phone := e.connect(t, app, "bob", "bob-phone", "foreground")
	ipad := e.connect(t, app, "bob", "bob-ipad", "foreground")
	alice := e.connect(t, app, "alice", "alice-phone", "foreground")
	call := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"}))
	waitEvent(t, phone, "call.invited", call.CallID)
	waitEvent(t, ipad, "call.invited", call.CallID)
	must[*client.Call](t)(phone.Accept(ctx, call.CallID))
	waitEvent(t, ipad, "call.answered_elsewhere", call.CallID)
	waitEvent(t, alice, "call.accepted", call.CallID)
	if _, err := ipad.Accept(ctx, call.CallID); err == nil {
		t.Fatal("a second device accepted an answered call")
	}
	got := must[*client.Call](t)(alice.GetCall(ctx, call.CallID))
	if pushesOf(got, "bob", "ring") != 0 || pushesOf(got, "bob", "missed") != 0 {
		t.Fatalf("foreground devices were pushed: %s", dump(got))
	}
}

// Bob already in a call: a new invitation is rejected busy.
func TestCallLineBusy(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	bob := e.connect(t, app, "bob", "bob-phone", "foreground")
	carol := e.connect(t, app, "carol", "carol-phone", "foreground")
	alice := e.connect(t, app, "alice", "alice-phone", "foreground")
	first := must[*client.Call](t)(carol.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"}))
	waitEvent(t, bob, "call.invited", first.CallID)
	must[*client.Call](t)(bob.Accept(ctx, first.CallID))
	second := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"}))
	ev := waitEvent(t, alice, "call.rejected", second.CallID)
	if ev.Reason != "busy" {
		t.Fatalf("rejection reason %q, want busy", ev.Reason)
	}
	got := must[*client.Call](t)(alice.GetCall(ctx, second.CallID))
	if got.State != "ended" || got.EndReason != "busy" || outcomeOf(got, "bob") != "busy" {
		t.Fatalf("busy call: %s", dump(got))
	}
}

// A group call of four: per-invitee outcomes, and the end when the last
// two hang up.
func TestCallGroupOfFour(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	conns := map[string]*client.Conn{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		conns[u] = e.connect(t, app, u, u+"-phone", "foreground")
	}
	call := must[*client.Call](t)(conns["alice"].Invite(ctx, client.InviteRequest{Invitees: []string{"bob", "carol", "dave"}, Media: "video", GroupID: "team"}))
	for _, u := range []string{"bob", "carol", "dave"} {
		waitEvent(t, conns[u], "call.invited", call.CallID)
	}
	must[*client.Call](t)(conns["bob"].Accept(ctx, call.CallID))
	must[*client.Call](t)(conns["carol"].Reject(ctx, call.CallID, "declined"))
	must[*client.Call](t)(conns["dave"].Accept(ctx, call.CallID))
	got := must[*client.Call](t)(conns["alice"].GetCall(ctx, call.CallID))
	want := map[string]string{"bob": "accepted", "carol": "declined", "dave": "accepted"}
	for u, o := range want {
		if outcomeOf(got, u) != o {
			t.Fatalf("%s: outcome %q, want %q: %s", u, outcomeOf(got, u), o, dump(got))
		}
	}
	must[*client.Call](t)(conns["bob"].Hangup(ctx, call.CallID))
	if got := must[*client.Call](t)(conns["alice"].GetCall(ctx, call.CallID)); got.State != "answered" {
		t.Fatalf("call ended with alice and dave still in it: %s", dump(got))
	}
	must[*client.Call](t)(conns["dave"].Hangup(ctx, call.CallID))
	ev := waitEvent(t, conns["alice"], "call.ended", call.CallID)
	if ev.Call.EndReason != "hangup" || outcomeOf(ev.Call, "bob") != "left" || outcomeOf(ev.Call, "dave") != "left" || outcomeOf(ev.Call, "carol") != "declined" {
		t.Fatalf("ended call: %s", dump(ev.Call))
	}
}

// The ring timeout fires on the server: both sides are told.
func TestCallRingTimeout(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := startDevWith(t, "", clk)
	ctx := ctxT(t)
	app := e.newCallApp(t)
	bob := e.connect(t, app, "bob", "bob-phone", "foreground")
	alice := e.connect(t, app, "alice", "alice-phone", "foreground")
	call := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio", Timeout: 30}))
	waitEvent(t, bob, "call.invited", call.CallID)
	clk.Advance(31 * time.Second)
	waitEvent(t, bob, "call.timeout", call.CallID)
	waitEvent(t, alice, "call.timeout", call.CallID)
	ev := waitEvent(t, alice, "call.ended", call.CallID)
	if ev.Call.EndReason != "timeout" || outcomeOf(ev.Call, "bob") != "timeout" {
		t.Fatalf("timed-out call: %s", dump(ev.Call))
	}
}

// A backgrounded app holding a socket is rung by push as well.
func TestCallBackgroundDeviceIsPushed(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := e.newCallApp(t)
	tok := e.registerDevice(t, app, "bob", "bob-phone", "voip")
	bob := e.connect(t, app, "bob", "bob-phone", "background")
	alice := e.connect(t, app, "alice", "alice-phone", "foreground")
	call := must[*client.Call](t)(alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"}))
	waitEvent(t, bob, "call.invited", call.CallID)
	if n := e.waitInbox(t, tok, 1); n[0].Headers["apns-push-type"] != "voip" {
		t.Fatalf("background device push: %v", n[0].Headers)
	}
}
