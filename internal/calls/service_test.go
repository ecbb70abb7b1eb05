package calls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

var ctx = context.Background()

func accept(user string) func(e *env, c *Call) error {
	return func(e *env, c *Call) error {
		_, err := e.svc.Accept(ctx, actor(user, user+"-phone"), c.CallID)
		return err
	}
}

func reject(user, reason string) func(e *env, c *Call) error {
	return func(e *env, c *Call) error {
		_, err := e.svc.Reject(ctx, actor(user, user+"-phone"), c.CallID, reason)
		return err
	}
}

func cancel(user string) func(e *env, c *Call) error {
	return func(e *env, c *Call) error {
		_, err := e.svc.Cancel(ctx, actor(user, user+"-phone"), c.CallID)
		return err
	}
}

func hangup(user string) func(e *env, c *Call) error {
	return func(e *env, c *Call) error {
		_, err := e.svc.Hangup(ctx, actor(user, user+"-phone"), c.CallID)
		return err
	}
}

func advance(d time.Duration) func(e *env, c *Call) error {
	return func(e *env, c *Call) error { e.clk.Advance(d); return nil }
}

// TestOneToOne runs the 1:1 state machine with both users connected in the
// foreground, checking what each side is told.
func TestOneToOne(t *testing.T) {
	tests := []struct {
		name       string
		steps      []func(e *env, c *Call) error
		caller     []string
		callee     []string
		endReason  string
		outcome    string
		hooks      []string
		answeredAt bool
	}{
		{
			name:      "accept then caller hangs up",
			steps:     []func(e *env, c *Call) error{accept("bob"), advance(time.Minute), hangup("alice")},
			caller:    []string{EventState, EventAccepted, EventLeft, "call.ended(hangup)"},
			callee:    []string{EventInvited, EventAccepted, EventLeft, "call.ended(hangup)"},
			endReason: EndHangup, outcome: "bob=accepted", answeredAt: true,
			hooks: []string{WebhookStarted, WebhookAnswered, WebhookEnded},
		},
		{
			name:      "accept then callee hangs up",
			steps:     []func(e *env, c *Call) error{accept("bob"), hangup("bob")},
			caller:    []string{EventState, EventAccepted, EventLeft, "call.ended(hangup)"},
			callee:    []string{EventInvited, EventAccepted, EventLeft, "call.ended(hangup)"},
			endReason: EndHangup, outcome: "bob=left", answeredAt: true,
			hooks: []string{WebhookStarted, WebhookAnswered, WebhookEnded},
		},
		{
			name:      "decline",
			steps:     []func(e *env, c *Call) error{reject("bob", "")},
			caller:    []string{EventState, "call.rejected(declined)", "call.ended(declined)"},
			callee:    []string{EventInvited, "call.rejected(declined)", "call.ended(declined)"},
			endReason: EndDeclined, outcome: "bob=declined",
			hooks: []string{WebhookStarted, WebhookEnded},
		},
		{
			name:      "busy",
			steps:     []func(e *env, c *Call) error{reject("bob", RejectBusy)},
			caller:    []string{EventState, "call.rejected(busy)", "call.ended(busy)"},
			callee:    []string{EventInvited, "call.rejected(busy)", "call.ended(busy)"},
			endReason: EndBusy, outcome: "bob=busy",
			hooks: []string{WebhookStarted, WebhookEnded},
		},
		{
			name:      "cancel",
			steps:     []func(e *env, c *Call) error{advance(5 * time.Second), cancel("alice")},
			caller:    []string{EventState, EventCancelled, "call.ended(cancelled)"},
			callee:    []string{EventInvited, EventCancelled, "call.ended(cancelled)"},
			endReason: EndCancelled, outcome: "bob=cancelled",
			hooks: []string{WebhookStarted, WebhookMissed + ":bob", WebhookEnded},
		},
		{
			name:      "caller hangs up while ringing cancels",
			steps:     []func(e *env, c *Call) error{hangup("alice")},
			caller:    []string{EventState, EventCancelled, "call.ended(cancelled)"},
			callee:    []string{EventInvited, EventCancelled, "call.ended(cancelled)"},
			endReason: EndCancelled, outcome: "bob=cancelled",
			hooks: []string{WebhookStarted, WebhookMissed + ":bob", WebhookEnded},
		},
		{
			name:      "timeout",
			steps:     []func(e *env, c *Call) error{advance(29 * time.Second), advance(time.Second)},
			caller:    []string{EventState, EventTimeout, "call.ended(timeout)"},
			callee:    []string{EventInvited, EventTimeout, "call.ended(timeout)"},
			endReason: EndTimeout, outcome: "bob=timeout",
			hooks: []string{WebhookStarted, WebhookMissed + ":bob", WebhookEnded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.connect("alice", "alice-phone", bus.Foreground)
			e.connect("bob", "bob-phone", bus.Foreground)
			c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}, Media: MediaVideo, RoomID: "42"})
			if c.State != StateRinging || e.svc.Ringing() != 1 || len(c.CallID) != 22 || len(c.UUID) != 36 {
				t.Fatalf("after invite: %+v, ringing %d", c, e.svc.Ringing())
			}
			for i, step := range tt.steps {
				if err := step(e, c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			callerEvs := e.wantEvents("alice", "alice-phone", tt.caller...)
			calleeEvs := e.wantEvents("bob", "bob-phone", tt.callee...)
			if calleeEvs[0].TimeLeftMS != 30000 || calleeEvs[0].User != "alice" || callerEvs[0].Seq != 1 || calleeEvs[0].Seq != 1 {
				t.Errorf("invite events: %+v / %+v", callerEvs[0], calleeEvs[0])
			}
			got := e.stored(c.CallID)
			if got.State != StateEnded || got.EndReason != tt.endReason || outcomes(got) != tt.outcome || (got.AnsweredAt != nil) != tt.answeredAt {
				t.Errorf("stored call: state %s reason %s outcomes %q answered %v", got.State, got.EndReason, outcomes(got), got.AnsweredAt)
			}
			if last := calleeEvs[len(calleeEvs)-1]; last.Seq != got.Seq || last.Call.State != StateEnded {
				t.Errorf("last event seq %d, call seq %d", last.Seq, got.Seq)
			}
			if h := e.emit.types(); !slices.Equal(h, tt.hooks) {
				t.Errorf("webhooks %q, want %q", h, tt.hooks)
			}
			if e.svc.Ringing() != 0 {
				t.Errorf("ringing %d", e.svc.Ringing())
			}
			if n := counterValue(t, e.svc.m.calls.WithLabelValues(tt.endReason)); n != 1 {
				t.Errorf("ringd_calls_total{%s} = %v", tt.endReason, n)
			}
			if len(e.push.Submits()) != 0 {
				t.Errorf("pushed a user in the foreground: %+v", e.push.Submits())
			}
			// Ended calls leave memory; the line is free again.
			if e.svc.activeCall(testApp, c.CallID) != nil || len(e.svc.activeOf(testApp, "bob")) != 0 {
				t.Error("ended call still in memory")
			}
		})
	}
}

func TestInvalidTransitions(t *testing.T) {
	tests := []struct {
		name  string
		setup []func(e *env, c *Call) error
		act   func(e *env, c *Call) error
		code  string
	}{
		{"accept a cancelled call", []func(e *env, c *Call) error{cancel("alice")}, accept("bob"), CodeCallEnded},
		{"accept a timed-out call", []func(e *env, c *Call) error{advance(31 * time.Second)}, accept("bob"), CodeCallEnded},
		{"cancel an answered call", []func(e *env, c *Call) error{accept("bob")}, cancel("alice"), CodeAlreadyAnswered},
		{"cancel an ended call", []func(e *env, c *Call) error{reject("bob", "")}, cancel("alice"), CodeCallEnded},
		{"callee cancels", nil, cancel("bob"), CodeNotCaller},
		{"accept twice", []func(e *env, c *Call) error{accept("bob")}, accept("bob"), CodeNotRinging},
		{"reject after accept", []func(e *env, c *Call) error{accept("bob")}, reject("bob", ""), CodeNotRinging},
		{"caller accepts", nil, accept("alice"), CodeNotRinging},
		{"stranger accepts", nil, accept("mallory"), CodeNotParticipant},
		{"stranger hangs up an ended call", []func(e *env, c *Call) error{cancel("alice")}, hangup("mallory"), CodeNotParticipant},
		{"stranger cancels", nil, cancel("mallory"), CodeNotParticipant},
		{"ringing callee hangs up", nil, hangup("bob"), CodeNotInCall},
		{"bad reject reason", nil, reject("bob", "maybe"), CodeBadField},
		{"invite more on 1:1", nil, func(e *env, c *Call) error {
			_, err := e.svc.InviteMore(ctx, actor("alice", ""), c.CallID, []string{"carol"})
			return err
		}, CodeNotGroupCall},
		{"unknown call", nil, func(e *env, c *Call) error {
			_, err := e.svc.Accept(ctx, actor("bob", ""), "nope")
			return err
		}, CodeCallNotFound},
		{"other app's call", nil, func(e *env, c *Call) error {
			_, err := e.svc.Accept(ctx, Actor{SDKAppID: testApp + 1, UserID: "bob"}, c.CallID)
			return err
		}, CodeCallNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
			for _, s := range tt.setup {
				if err := s(e, c); err != nil {
					t.Fatal(err)
				}
			}
			before, err := e.svc.Get(ctx, testApp, c.CallID)
			if err != nil {
				t.Fatal(err)
			}
			wantCode(t, tt.act(e, c), tt.code)
			after, _ := e.svc.Get(ctx, testApp, c.CallID)
			if after.Seq != before.Seq {
				t.Errorf("a refused request changed the call: seq %d -> %d", before.Seq, after.Seq)
			}
		})
	}
	t.Run("call_ended says how", func(t *testing.T) {
		e := newEnv(t)
		c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
		noErr(e.svc.Cancel(ctx, actor("alice", ""), c.CallID))
		_, err := e.svc.Accept(ctx, actor("bob", ""), c.CallID)
		if err == nil || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("%v", err)
		}
		_, err = e.svc.GetForUser(ctx, testApp, "mallory", c.CallID)
		wantCode(t, err, CodeNotParticipant)
		got := noErr(e.svc.GetForUser(ctx, testApp, "bob", c.CallID))
		if got.EndReason != EndCancelled {
			t.Fatal(got.EndReason)
		}
	})
}

func TestInviteValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		req  InviteRequest
		code string
	}{
		{"no invitees", InviteRequest{Media: MediaAudio}, CodeBadInvitees},
		{"duplicate", InviteRequest{Invitees: []string{"bob", "bob"}, Media: MediaAudio}, CodeBadInvitees},
		{"self", InviteRequest{Invitees: []string{"alice"}, Media: MediaAudio}, CodeBadInvitees},
		{"bad user ID", InviteRequest{Invitees: []string{"b\nob"}, Media: MediaAudio}, CodeBadInvitees},
		{"long user ID", InviteRequest{Invitees: []string{long(33)}, Media: MediaAudio}, CodeBadInvitees},
		{"too many", InviteRequest{Invitees: []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}, Media: MediaAudio}, CodeTooManyInvitees},
		{"no media", InviteRequest{Invitees: []string{"bob"}}, CodeBadMedia},
		{"bad media", InviteRequest{Invitees: []string{"bob"}, Media: "text"}, CodeBadMedia},
		{"timeout too long", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, Timeout: 301}, CodeBadTimeout},
		{"negative timeout", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, Timeout: -1}, CodeBadTimeout},
		{"data too large", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, Data: long(4097)}, CodeDataTooLarge},
		{"group ID too long", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, GroupID: long(129)}, CodeBadField},
		{"room ID too long", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, RoomID: long(129)}, CodeBadField},
		{"caller name too long", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, CallerName: long(129)}, CodeBadField},
		{"push title too long", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, Push: PushOptions{Title: long(257)}}, CodeBadField},
		{"push body not UTF-8", InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio, Push: PushOptions{Body: "\xff"}}, CodeBadField},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Invite(ctx, actor("alice", ""), tt.req)
			wantCode(t, err, tt.code)
		})
	}
	// Limits that just fit.
	c := e.invite("alice", InviteRequest{Invitees: []string{long(32)}, Media: MediaAudio, Timeout: 300, Data: long(4096),
		GroupID: long(128), Push: PushOptions{Title: long(256)}})
	if c.Timeout != 300 || c.Invitees[0].RingDeadline.Sub(c.CreatedAt) != 300*time.Second {
		t.Fatalf("timeout %d, deadline %v", c.Timeout, c.Invitees[0].RingDeadline)
	}
	if len(e.svc.calls) != 1 {
		t.Fatalf("refused invites left calls in memory: %d", len(e.svc.calls))
	}
}

func TestInviteRateLimit(t *testing.T) {
	e := newEnv(t)
	e.settings(func(s *settings.Settings) { s.InvitesPerMinute = 3; s.CallWaiting = true })
	for i := range 3 {
		c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
		noErr(e.svc.Cancel(ctx, actor("alice", ""), c.CallID))
		_ = i
	}
	_, err := e.svc.Invite(ctx, actor("alice", ""), InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio})
	wantCode(t, err, CodeRateLimited)
	// Another user has their own bucket; the refill lets alice call again.
	e.invite("carol", InviteRequest{Invitees: []string{"bob"}})
	e.clk.Advance(20 * time.Second)
	e.invite("alice", InviteRequest{Invitees: []string{"dave"}})
}

func TestBusyAndCallWaiting(t *testing.T) {
	e := newEnv(t)
	e.connect("alice", "alice-phone", bus.Foreground)
	e.connect("bob", "bob-phone", bus.Foreground)
	e.connect("carol", "carol-phone", bus.Foreground)
	busyBob := e.invite("carol", InviteRequest{Invitees: []string{"bob"}})
	noErr(e.svc.Accept(ctx, actor("bob", "bob-phone"), busyBob.CallID))
	e.events("bob", "bob-phone")
	e.events("carol", "carol-phone")

	// Bob is in an answered call: alice's call to him ends at once, busy.
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	if c.State != StateEnded || c.EndReason != EndBusy || outcomes(c) != "bob=busy" {
		t.Fatalf("busy call: %s %s %s", c.State, c.EndReason, outcomes(c))
	}
	e.wantEvents("alice", "alice-phone", EventState, "call.rejected(busy)", "call.ended(busy)")
	e.wantEvents("bob", "bob-phone", "call.rejected(busy)") // told once, never rung
	if e.svc.Ringing() != 0 || len(e.push.Submits()) != 0 {
		t.Fatalf("ringing %d, pushes %d", e.svc.Ringing(), len(e.push.Submits()))
	}

	// The caller of a ringing call is busy too; so is a ringing invitee.
	dave := e.invite("dave", InviteRequest{Invitees: []string{"erin"}})
	c = e.invite("alice", InviteRequest{Invitees: []string{"dave", "erin", "frank"}, GroupID: "g1"})
	if c.State != StateRinging || outcomes(c) != "dave=busy erin=busy frank=ringing" {
		t.Fatalf("group with busy users: %s %s", c.State, outcomes(c))
	}
	noErr(e.svc.Cancel(ctx, actor("dave", ""), dave.CallID))
	noErr(e.svc.Cancel(ctx, actor("alice", ""), c.CallID))

	// With call waiting, bob rings although he is in a call.
	e.settings(func(s *settings.Settings) { s.CallWaiting = true })
	e.events("alice", "alice-phone")
	e.events("bob", "bob-phone")
	c = e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	if c.State != StateRinging || outcomes(c) != "bob=ringing" {
		t.Fatalf("call waiting: %s %s", c.State, outcomes(c))
	}
	e.wantEvents("bob", "bob-phone", EventInvited)
	// After his first call ends, bob is free again without call waiting.
	e.settings(func(s *settings.Settings) { s.CallWaiting = false })
	noErr(e.svc.Hangup(ctx, actor("carol", ""), busyBob.CallID))
	noErr(e.svc.Cancel(ctx, actor("alice", ""), c.CallID))
	c = e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	if outcomes(c) != "bob=ringing" {
		t.Fatalf("bob still busy: %s", outcomes(c))
	}
}

func TestMultiDeviceFirstAcceptWins(t *testing.T) {
	e := newEnv(t)
	e.connect("alice", "alice-phone", bus.Foreground)
	// Bob: an iPad in the foreground, a phone in the background (VoIP
	// token), a watch with only an alert token and no session.
	e.register("bob", "ipad", store.KindAlert)
	e.register("bob", "phone", store.KindVoIP)
	e.register("bob", "watch", store.KindAlert)
	e.connect("bob", "ipad", bus.Foreground)
	e.connect("bob", "phone", bus.Background)

	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}, CallerName: "Alice"})
	pushes := e.push.to("bob")
	if len(pushes) != 1 || !slices.Equal(pushes[0].Req.ExcludeDevices, []string{"ipad"}) || !pushes[0].Req.VoIP {
		t.Fatalf("ring pushes %+v", pushes)
	}
	ringID := pushes[0].ID
	if c.Invitees[0].Pushes[0] != (PushedDevice{PushID: ringID, Kind: PushRing}) || !slices.Equal(c.PushIDs, []string{ringID}) {
		t.Fatalf("push not recorded: %+v %v", c.Invitees[0].Pushes, c.PushIDs)
	}
	e.wantEvents("bob", "ipad", EventInvited)
	e.wantEvents("bob", "phone", EventInvited)

	// The phone answers; the iPad is told answered elsewhere.
	got := noErr(e.svc.Accept(ctx, actor("bob", "phone"), c.CallID))
	e.wantEvents("bob", "phone", EventAccepted)
	el := e.wantEvents("bob", "ipad", EventAnsweredElsewhere)
	if el[0].DeviceID != "phone" || el[0].Seq != 2 {
		t.Errorf("answered elsewhere: %+v", el[0])
	}
	e.wantEvents("alice", "alice-phone", EventState, EventAccepted)
	devs := map[string]string{}
	for _, d := range got.Invitees[0].Devices {
		devs[d.DeviceID] = d.Outcome
	}
	want := map[string]string{"phone": OutcomeAccepted, "ipad": OutcomeAnsweredElsewhere, "watch": OutcomeAnsweredElsewhere}
	if len(devs) != 3 || devs["phone"] != want["phone"] || devs["ipad"] != want["ipad"] || devs["watch"] != want["watch"] {
		t.Errorf("device outcomes %v", devs)
	}
	if got.Invitees[0].DeviceID != "phone" {
		t.Errorf("answering device %q", got.Invitees[0].DeviceID)
	}
	// The ring push is expired; no missed-call push, now or at the deadline.
	if r, ok := e.push.expired(ringID); !ok || r != "call_accepted" {
		t.Errorf("ring push expiry %q %v", r, ok)
	}
	_, err := e.svc.Accept(ctx, actor("bob", "ipad"), c.CallID)
	wantCode(t, err, CodeNotRinging)
	e.clk.Advance(time.Minute)
	noErr(e.svc.Hangup(ctx, actor("bob", "phone"), c.CallID))
	if n := len(e.push.Submits()); n != 1 {
		t.Errorf("%d pushes, want only the ring push", n)
	}
}

func TestMultiDeviceRejectElsewhere(t *testing.T) {
	e := newEnv(t)
	e.connect("bob", "ipad", bus.Foreground)
	e.connect("bob", "phone", bus.Foreground)
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	e.events("bob", "ipad")
	e.events("bob", "phone")
	got := noErr(e.svc.Reject(ctx, actor("bob", "ipad"), c.CallID, ""))
	e.wantEvents("bob", "ipad", "call.rejected(declined)", "call.ended(declined)")
	e.wantEvents("bob", "phone", "call.rejected_elsewhere(declined)", "call.ended(declined)")
	for _, d := range got.Invitees[0].Devices {
		if want := map[string]string{"ipad": OutcomeDeclined, "phone": OutcomeRejectedElsewhere}[d.DeviceID]; d.Outcome != want {
			t.Errorf("device %s: %s, want %s", d.DeviceID, d.Outcome, want)
		}
	}
}

func TestAlertOnlyOfflineCalleeCancelled(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindAlert)
	voip := false
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}, Push: PushOptions{VoIP: &voip}})
	pushes := e.push.to("bob")
	if len(pushes) != 1 || pushes[0].Req.VoIP || pushes[0].Req.Body != settings.DefaultAlertBody || pushes[0].Req.Title != "alice" ||
		pushes[0].Req.Sound != settings.DefaultSound || len(pushes[0].Req.ExcludeDevices) != 0 {
		t.Fatalf("ring push %+v", pushes)
	}
	e.clk.Advance(10 * time.Second)
	got := noErr(e.svc.Cancel(ctx, actor("alice", ""), c.CallID))
	pushes = e.push.to("bob")
	if len(pushes) != 2 {
		t.Fatalf("pushes %+v", pushes)
	}
	if pushes[0].Regs == nil || pushes[1].Regs != nil {
		t.Errorf("the ring push should carry the registrations it was decided on, the missed push none: %v / %v", pushes[0].Regs, pushes[1].Regs)
	}
	missed := pushes[1].Req
	if missed.VoIP || missed.Body != "Missed call from alice" || missed.CollapseID != c.CallID || missed.Source != "call" || missed.Expiration != nil {
		t.Errorf("missed push %+v", missed)
	}
	if r, ok := e.push.expired(pushes[0].ID); !ok || r != "call_cancelled" {
		t.Errorf("ring push not expired: %q", r)
	}
	if _, ok := e.push.expired(pushes[1].ID); ok {
		t.Error("missed push expired")
	}
	inv := got.Invitees[0]
	if len(inv.Pushes) != 2 || inv.Pushes[1].Kind != PushMissed || len(got.PushIDs) != 2 {
		t.Errorf("pushes recorded %+v %v", inv.Pushes, got.PushIDs)
	}
	// Missed-call pushes can be switched off.
	e.settings(func(s *settings.Settings) { off := false; s.MissedCallPush = &off })
	c = e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	e.clk.Advance(30 * time.Second)
	if n := len(e.push.to("bob")); n != 3 {
		t.Errorf("%d pushes, want a ring push and no missed push", n)
	}
	if got := e.stored(c.CallID); got.EndReason != EndTimeout {
		t.Error(got.EndReason)
	}
}

func TestForegroundNotPushedBackgroundPushed(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	e.register("bob", "ipad", store.KindVoIP)
	e.connect("bob", "phone", bus.Foreground)
	e.connect("bob", "ipad", bus.Foreground)

	// Every device is in the foreground: no push at all.
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	if n := len(e.push.Submits()); n != 0 {
		t.Fatalf("%d pushes", n)
	}
	// The phone goes to the background while bob still rings: it alone is pushed.
	e.clk.Advance(5 * time.Second)
	e.setState("bob", "phone", DeviceBackground)
	pushes := e.push.to("bob")
	if len(pushes) != 1 || !slices.Equal(pushes[0].Req.ExcludeDevices, []string{"ipad"}) ||
		*pushes[0].Req.Expiration != c.Invitees[0].RingDeadline.Unix() {
		t.Fatalf("late push %+v", pushes)
	}
	// Reported again, or back and forth: nothing is pushed twice.
	e.setState("bob", "phone", DeviceForeground)
	e.setState("bob", "phone", DeviceBackground)
	if n := len(e.push.Submits()); n != 1 {
		t.Fatalf("%d pushes after repeated background", n)
	}
	got := e.stored(c.CallID)
	if len(got.Invitees[0].Pushes) != 1 || got.Seq != 1 {
		t.Errorf("late push not stored (or bumped seq): %+v seq %d", got.Invitees[0].Pushes, got.Seq)
	}
	// Timeout: the late push is expired and a missed-call push follows,
	// excluding the iPad, which is still in the foreground.
	e.clk.Advance(25 * time.Second)
	pushes = e.push.to("bob")
	if len(pushes) != 2 || !slices.Equal(pushes[1].Req.ExcludeDevices, []string{"ipad"}) || pushes[1].Req.Body != "Missed call from alice" {
		t.Fatalf("after timeout %+v", pushes)
	}
	if _, ok := e.push.expired(pushes[0].ID); !ok {
		t.Error("ring push not expired at timeout")
	}

	// A user with one device in the background and one in the foreground:
	// one push excluding the foreground device; the background report of the
	// pushed device pushes nothing more.
	e2 := newEnv(t)
	e2.register("bob", "phone", store.KindVoIP)
	e2.register("bob", "ipad", store.KindVoIP)
	lone := e2.register("bob", "", store.KindAlert)
	e2.connect("bob", "ipad", bus.Foreground)
	c = e2.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	pushes = e2.push.to("bob")
	if len(pushes) != 1 || !slices.Equal(pushes[0].Req.ExcludeDevices, []string{"ipad"}) {
		t.Fatalf("pushes %+v", pushes)
	}
	noErr(0, e2.svc.DeviceStateChanged(ctx, testApp, "bob", "phone", DeviceBackground)) // not connected: already pushed
	if n := len(e2.push.Submits()); n != 1 {
		t.Fatalf("re-pushed: %d", n)
	}
	// The iPad going to the background is pushed, pinned to its token since
	// the lone token cannot be excluded.
	e2.setState("bob", "ipad", DeviceBackground)
	pushes = e2.push.to("bob")
	if len(pushes) != 2 || pushes[1].Req.Token == "" || pushes[1].Req.Token == lone || !slices.Equal(pushes[1].Req.ExcludeDevices, []string{"phone"}) {
		t.Fatalf("iPad push %+v", pushes[1].Req)
	}
	if n := len(e2.stored(c.CallID).Invitees[0].Devices); n != 3 {
		t.Errorf("devices %+v", e2.stored(c.CallID).Invitees[0].Devices)
	}
}

func TestRingPushContent(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	e.register("carol", "phone", store.KindVoIP)
	e.settings(func(s *settings.Settings) { s.AlertTitle = "Call" })
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob", "carol"}, Media: MediaVideo, GroupID: "@TGS#1", RoomID: "804544637",
		CallerName: "Alice A.", Timeout: 45, Push: PushOptions{Body: "Video call", Sound: "ring.caf"}})
	pushes := e.push.to("bob")
	if len(pushes) != 1 {
		t.Fatal(pushes)
	}
	r := pushes[0].Req
	deadline := t0.Add(45 * time.Second).Unix()
	if !r.VoIP || r.Expiration == nil || *r.Expiration != deadline || r.Priority != 10 || r.CollapseID != c.CallID ||
		r.InterruptionLevel != "time-sensitive" || r.Source != "call" || r.Title != "Call" || r.Body != "Video call" || r.Sound != "ring.caf" {
		t.Errorf("request %+v", r)
	}
	wantCustom := map[string]string{
		"call_id": `"` + c.CallID + `"`, "uuid": `"` + c.UUID + `"`, "caller": `"alice"`, "caller_name": `"Alice A."`,
		"media": `"video"`, "group_id": `"@TGS#1"`, "room_id": `"804544637"`, "invitees": `["bob","carol"]`,
		"created_at": jsonString(t0.Unix()), "expires_at": jsonString(deadline),
	}
	if len(r.Custom) != len(wantCustom) {
		t.Errorf("custom keys %v", r.Custom)
	}
	for k, v := range wantCustom {
		if string(r.Custom[k]) != v {
			t.Errorf("custom %s = %s, want %s", k, r.Custom[k], v)
		}
	}
	var ext struct {
		Entity struct {
			Version  int    `json:"version"`
			Action   int    `json:"action"`
			ChatType int    `json:"chatType"`
			Sender   string `json:"sender"`
			Nickname string `json:"nickname"`
			SendTime int64  `json:"sendTime"`
			Content  string `json:"content"`
		} `json:"entity"`
	}
	if err := json.Unmarshal([]byte(r.Ext), &ext); err != nil {
		t.Fatalf("ext %q: %v", r.Ext, err)
	}
	en := ext.Entity
	if en.Version != 1 || en.Action != 2 || en.ChatType != 2 || en.Sender != "alice" || en.Nickname != "Alice A." || en.SendTime != t0.Unix() {
		t.Errorf("entity %+v", en)
	}
	var content struct {
		Action      int      `json:"action"`
		CallID      string   `json:"call_id"`
		CallType    int      `json:"call_type"`
		InvitedList []string `json:"invited_list"`
		RoomID      any      `json:"room_id"`
		GroupID     string   `json:"group_id"`
		Timeout     int      `json:"timeout"`
		Version     int      `json:"version"`
	}
	if err := json.Unmarshal([]byte(en.Content), &content); err != nil {
		t.Fatalf("content %q: %v", en.Content, err)
	}
	if content.Action != 1 || content.CallID != c.CallID || content.CallType != 2 || !slices.Equal(content.InvitedList, []string{"bob", "carol"}) ||
		content.RoomID != float64(804544637) || content.GroupID != "@TGS#1" || content.Timeout != 45 || content.Version != 4 {
		t.Errorf("content %+v", content)
	}

	// 1:1 audio with a room ID that is not a uint32: chatType 1, call_type 1, room_id a string.
	if got := tuiExt(&record{Call: Call{CallID: "x", Caller: "a", Media: MediaAudio, RoomID: "room-7", Timeout: 30,
		Invitees: []Invitee{{User: "b"}}}}, t0); !strings.Contains(got, `\"room_id\":\"room-7\"`) ||
		!strings.Contains(got, `"chatType":1`) || !strings.Contains(got, `\"call_type\":1`) {
		t.Errorf("1:1 ext %s", got)
	}
	for room, want := range map[string]string{"0": `0`, "4294967295": `4294967295`, "4294967296": `"4294967296"`, "007": `"007"`, "": `""`, "-1": `"-1"`} {
		if got := string(roomIDJSON(room)); got != want {
			t.Errorf("room %q: %s, want %s", room, got, want)
		}
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPushFailureDoesNotFailInvite(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	e.push.fail = errors.New("outbox full")
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	if c.State != StateRinging || !strings.Contains(c.Invitees[0].PushError, "outbox full") || len(c.Invitees[0].Pushes) != 0 {
		t.Fatalf("%+v", c.Invitees[0])
	}
}

// TestGroupOfFour: alice calls bob, carol and dave in a group.
func TestGroupOfFour(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		e.connect(u, u+"-phone", bus.Foreground)
	}
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob", "carol", "dave"}, GroupID: "team"})
	noErr(e.svc.Accept(ctx, actor("bob", "bob-phone"), c.CallID))
	e.clk.Advance(5 * time.Second)
	noErr(e.svc.Accept(ctx, actor("carol", "carol-phone"), c.CallID))
	got := noErr(e.svc.Reject(ctx, actor("dave", "dave-phone"), c.CallID, ""))
	if got.State != StateAnswered || outcomes(got) != "bob=accepted carol=accepted dave=declined" {
		t.Fatalf("%s %s", got.State, outcomes(got))
	}
	if e.svc.Ringing() != 0 {
		t.Errorf("ringing %d", e.svc.Ringing())
	}
	// Alice leaves: bob and carol go on.
	got = noErr(e.svc.Hangup(ctx, actor("alice", "alice-phone"), c.CallID))
	if got.State != StateAnswered || !got.CallerLeft {
		t.Fatalf("after alice left: %s", got.State)
	}
	_, err := e.svc.Hangup(ctx, actor("alice", "alice-phone"), c.CallID)
	wantCode(t, err, CodeNotInCall)
	// Bob leaves: carol is alone, the call ends.
	got = noErr(e.svc.Hangup(ctx, actor("bob", "bob-phone"), c.CallID))
	if got.State != StateEnded || got.EndReason != EndHangup || outcomes(got) != "bob=left carol=accepted dave=declined" {
		t.Fatalf("end: %s %s %s", got.State, got.EndReason, outcomes(got))
	}
	e.wantEvents("dave", "dave-phone", EventInvited, EventAccepted, EventAccepted, "call.rejected(declined)", EventLeft, EventLeft, "call.ended(hangup)")
	e.wantEvents("carol", "carol-phone", EventInvited, EventAccepted, EventAccepted, "call.rejected(declined)", EventLeft, EventLeft, "call.ended(hangup)")
	if h := e.emit.types(); !slices.Equal(h, []string{WebhookStarted, WebhookAnswered, WebhookEnded}) {
		t.Errorf("webhooks %q", h)
	}
	st := e.stored(c.CallID)
	sc := noErr(e.st.Call(ctx, testApp, c.CallID))
	if len(sc.Participants) != 4 || sc.Participants[0].Outcome != OutcomeLeft || sc.Participants[3].Outcome != OutcomeDeclined || st.Seq != 7 {
		t.Errorf("stored participants %+v seq %d", sc.Participants, st.Seq)
	}
}

// A group rings each invitee's registered devices, whether their
// registrations are read one user at a time or, for a large group, in one
// query.
func TestGroupRingsRegisteredDevices(t *testing.T) {
	for _, n := range []int{prefetchFrom - 1, prefetchFrom} {
		t.Run(fmt.Sprint(n, " invitees"), func(t *testing.T) {
			e := newEnv(t)
			e.settings(func(s *settings.Settings) { s.MaxInvitees = 2 * prefetchFrom })
			var invitees []string
			for i := range n {
				u := fmt.Sprint("user", i)
				invitees = append(invitees, u)
				switch i % 3 {
				case 0: // a VoIP phone, offline
					e.register(u, u+"-phone", store.KindVoIP)
				case 1: // a phone in the foreground, and an offline tablet
					e.register(u, u+"-phone", store.KindVoIP)
					e.register(u, u+"-tablet", store.KindAlert)
					e.connect(u, u+"-phone", bus.Foreground)
				}
			}
			c := e.invite("alice", InviteRequest{Invitees: invitees, GroupID: "team"})
			for i, inv := range c.Invitees {
				u := inv.User
				var devices []string
				for _, d := range inv.Devices {
					devices = append(devices, d.DeviceID)
				}
				slices.Sort(devices)
				pushes := e.push.to(u)
				var want []string
				switch i % 3 {
				case 0:
					want = []string{u + "-phone"}
				case 1:
					want = []string{u + "-phone", u + "-tablet"}
				}
				if !slices.Equal(devices, want) {
					t.Errorf("%s: devices %q, want %q", u, devices, want)
				}
				wantPushes := 1 // one for all the user's devices not in the foreground
				if len(want) == 0 {
					wantPushes = 0
				}
				if len(pushes) != wantPushes {
					t.Errorf("%s: %d ring pushes, want %d", u, len(pushes), wantPushes)
				}
				if i%3 == 1 && len(pushes) == 1 && !slices.Equal(pushes[0].Req.ExcludeDevices, []string{u + "-phone"}) {
					t.Errorf("%s: push excludes %q, want the foreground phone", u, pushes[0].Req.ExcludeDevices)
				}
				// The registrations the call read go with the push, so the
				// pipeline does not read them a second time.
				if len(pushes) == 1 {
					var regDevices []string
					for _, r := range pushes[0].Regs {
						regDevices = append(regDevices, r.DeviceID)
					}
					slices.Sort(regDevices)
					if !slices.Equal(regDevices, want) {
						t.Errorf("%s: push given the registrations of %q, want %q", u, regDevices, want)
					}
				}
			}
		})
	}
}

func TestGroupEndsWhenNobodyRings(t *testing.T) {
	e := newEnv(t)
	e.connect("alice", "alice-phone", bus.Foreground)
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob", "carol"}, GroupID: "g"})
	noErr(e.svc.Reject(ctx, actor("bob", ""), c.CallID, ""))
	e.clk.Advance(30 * time.Second)
	got := e.stored(c.CallID)
	if got.EndReason != EndTimeout || outcomes(got) != "bob=declined carol=timeout" {
		t.Fatalf("%s %s", got.EndReason, outcomes(got))
	}
	e.wantEvents("alice", "alice-phone", EventState, "call.rejected(declined)", EventTimeout, "call.ended(timeout)")

	c = e.invite("alice", InviteRequest{Invitees: []string{"bob", "carol"}, GroupID: "g"})
	noErr(e.svc.Reject(ctx, actor("bob", ""), c.CallID, ""))
	got = noErr(e.svc.Reject(ctx, actor("carol", ""), c.CallID, RejectBusy))
	if got.EndReason != EndDeclined {
		t.Fatal(got.EndReason)
	}
	// Answered, then the only one who accepted leaves while another still
	// rings: the caller and the ringing invitee remain, the call goes on
	// until that one times out.
	c = e.invite("alice", InviteRequest{Invitees: []string{"bob", "carol"}, GroupID: "g"})
	noErr(e.svc.Accept(ctx, actor("bob", ""), c.CallID))
	got = noErr(e.svc.Hangup(ctx, actor("bob", ""), c.CallID))
	if got.State != StateAnswered {
		t.Fatal(got.State)
	}
	e.clk.Advance(30 * time.Second)
	if got := e.stored(c.CallID); got.EndReason != EndHangup || outcomes(got) != "bob=left carol=timeout" {
		t.Fatalf("%s %s", got.EndReason, outcomes(got))
	}
}

func TestInviteMore(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"alice", "bob", "erin"} {
		e.connect(u, u+"-phone", bus.Foreground)
	}
	e.register("frank", "phone", store.KindVoIP)
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}, GroupID: "g", Timeout: 20})
	noErr(e.svc.Accept(ctx, actor("bob", "bob-phone"), c.CallID))
	e.clk.Advance(10 * time.Second)

	_, err := e.svc.InviteMore(ctx, actor("erin", ""), c.CallID, []string{"frank"})
	wantCode(t, err, CodeNotParticipant)
	_, err = e.svc.InviteMore(ctx, actor("bob", ""), c.CallID, []string{"alice"})
	wantCode(t, err, CodeBadInvitees)
	_, err = e.svc.InviteMore(ctx, actor("bob", ""), c.CallID, []string{"bob"})
	wantCode(t, err, CodeBadInvitees)

	got := noErr(e.svc.InviteMore(ctx, actor("bob", "bob-phone"), c.CallID, []string{"erin", "frank"}))
	if outcomes(got) != "bob=accepted erin=ringing frank=ringing" || !got.Invitees[1].RingDeadline.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("%s %v", outcomes(got), got.Invitees[1].RingDeadline)
	}
	e.wantEvents("alice", "alice-phone", EventState, EventAccepted, EventInviteesAdded)
	e.wantEvents("bob", "bob-phone", EventInvited, EventAccepted, EventInviteesAdded)
	evs := e.wantEvents("erin", "erin-phone", EventInvited)
	if evs[0].TimeLeftMS != 20000 || evs[0].User != "bob" {
		t.Errorf("erin's invite %+v", evs[0])
	}
	pushes := e.push.to("frank")
	if len(pushes) != 1 || *pushes[0].Req.Expiration != t0.Add(30*time.Second).Unix() {
		t.Fatalf("frank's push %+v", pushes)
	}
	// A ringing invitee cannot invite; erin declines, frank times out; the
	// call goes on with alice and bob.
	_, err = e.svc.InviteMore(ctx, actor("erin", ""), c.CallID, []string{"gina"})
	wantCode(t, err, CodeNotInCall)
	noErr(e.svc.Reject(ctx, actor("erin", "erin-phone"), c.CallID, ""))
	e.clk.Advance(20 * time.Second)
	got = e.stored(c.CallID)
	if got.State != StateAnswered || outcomes(got) != "bob=accepted erin=declined frank=timeout" {
		t.Fatalf("%s %s", got.State, outcomes(got))
	}
	if r, ok := e.push.expired(pushes[0].ID); !ok || r != "call_timeout" || len(e.push.to("frank")) != 2 {
		t.Errorf("frank: expiry %q, pushes %d", r, len(e.push.to("frank")))
	}
	// Busy rule applies; the limit counts existing invitees.
	e.invite("gina", InviteRequest{Invitees: []string{"henry"}})
	got = noErr(e.svc.InviteMore(ctx, actor("alice", ""), c.CallID, []string{"gina"}))
	if inv := got.Invitees[3]; inv.Outcome != OutcomeBusy {
		t.Errorf("gina %s", inv.Outcome)
	}
	e.settings(func(s *settings.Settings) { s.MaxInvitees = 5 })
	_, err = e.svc.InviteMore(ctx, actor("alice", ""), c.CallID, []string{"i1", "i2"})
	wantCode(t, err, CodeTooManyInvitees)
}

func TestIdempotentRequests(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	a := Actor{SDKAppID: testApp, UserID: "alice", DeviceID: "alice-phone", RequestID: "req-1"}
	req := InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio}
	c1 := noErr(e.svc.Invite(ctx, a, req))
	c2 := noErr(e.svc.Invite(ctx, a, req))
	if c1.CallID != c2.CallID || len(e.push.Submits()) != 1 {
		t.Fatalf("second invite made a change: %s %s, %d pushes", c1.CallID, c2.CallID, len(e.push.Submits()))
	}
	// Another user's request ID is theirs.
	c3 := noErr(e.svc.Invite(ctx, Actor{SDKAppID: testApp, UserID: "carol", RequestID: "req-1"}, InviteRequest{Invitees: []string{"dave"}, Media: MediaAudio}))
	if c3.CallID == c1.CallID {
		t.Fatal("request IDs shared across users")
	}
	b := Actor{SDKAppID: testApp, UserID: "bob", DeviceID: "phone", RequestID: "acc"}
	first := noErr(e.svc.Accept(ctx, b, c1.CallID))
	again := noErr(e.svc.Accept(ctx, b, c1.CallID))
	if again.Seq != first.Seq || again.State != StateAnswered {
		t.Fatalf("retried accept: seq %d vs %d", again.Seq, first.Seq)
	}
	// Errors are remembered too.
	_, err := e.svc.Cancel(ctx, Actor{SDKAppID: testApp, UserID: "alice", RequestID: "cx"}, c1.CallID)
	wantCode(t, err, CodeAlreadyAnswered)
	noErr(e.svc.Hangup(ctx, actor("bob", "phone"), c1.CallID))
	_, err = e.svc.Cancel(ctx, Actor{SDKAppID: testApp, UserID: "alice", RequestID: "cx"}, c1.CallID)
	wantCode(t, err, CodeAlreadyAnswered)
	// After the TTL the request ID is new again.
	e.clk.Advance(DefaultRequestTTL + time.Second)
	c4 := noErr(e.svc.Invite(ctx, a, req))
	if c4.CallID == c1.CallID {
		t.Fatal("request ID remembered past its TTL")
	}
	// A result returned to one caller cannot be changed by it.
	c4.Invitees[0].Outcome = "mangled"
	if c5 := noErr(e.svc.Invite(ctx, a, req)); c5.Invitees[0].Outcome != OutcomeRinging {
		t.Fatal("idempotency memory shared with the caller")
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	c := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	late := e.invite("carol", InviteRequest{Invitees: []string{"dave"}, Timeout: 5})
	answered := e.invite("erin", InviteRequest{Invitees: []string{"frank"}})
	noErr(e.svc.Accept(ctx, actor("frank", ""), answered.CallID))
	e.svc.Close()

	// Down for 10 s: carol's call to dave passed its deadline meanwhile.
	e.clk.Advance(10 * time.Second)
	e.svc = e.newService()
	t.Cleanup(e.svc.Close)
	e.connect("alice", "alice-phone", bus.Foreground)
	e.connect("carol", "carol-phone", bus.Foreground)
	noErr(0, e.svc.Start(ctx))
	e.wantEvents("carol", "carol-phone", EventTimeout, "call.ended(timeout)")
	if got := e.stored(late.CallID); got.EndReason != EndTimeout {
		t.Fatalf("overdue call: %s", got.EndReason)
	}
	if e.svc.Ringing() != 1 {
		t.Fatalf("ringing %d", e.svc.Ringing())
	}
	// Busy state survives: frank is in the answered call.
	got := e.invite("gina", InviteRequest{Invitees: []string{"frank"}})
	if outcomes(got) != "frank=busy" {
		t.Errorf("frank after restart: %s", outcomes(got))
	}
	// The ringing call's timer was re-armed for the remaining 20 s.
	e.clk.Advance(19 * time.Second)
	e.wantEvents("alice", "alice-phone")
	e.clk.Advance(time.Second)
	e.wantEvents("alice", "alice-phone", EventTimeout, "call.ended(timeout)")
	final := e.stored(c.CallID)
	if final.EndReason != EndTimeout || len(final.Invitees[0].Pushes) != 2 {
		t.Fatalf("%s %+v", final.EndReason, final.Invitees[0].Pushes)
	}
	if _, ok := e.push.expired(final.Invitees[0].Pushes[0].PushID); !ok {
		t.Error("ring push not expired after restart")
	}
	noErr(e.svc.Hangup(ctx, actor("erin", ""), answered.CallID))
}

func TestSyncAfterReconnect(t *testing.T) {
	e := newEnv(t)
	// First connection: nothing to tell.
	evs := noErr(e.svc.DeviceConnected(ctx, testApp, "bob", "phone"))
	if len(evs) != 0 {
		t.Fatalf("first sync %v", types(evs))
	}
	e.clk.Advance(time.Minute)
	noErr(0, e.svc.DeviceDisconnected(ctx, testApp, "bob", "phone"))
	e.clk.Advance(time.Minute)

	// While bob is away: a call is cancelled, one answered on his iPad,
	// one still rings, one he is in (answered).
	cancelled := e.invite("alice", InviteRequest{Invitees: []string{"bob"}})
	noErr(e.svc.Cancel(ctx, actor("alice", ""), cancelled.CallID))
	e.clk.Advance(time.Second)
	elsewhere := e.invite("carol", InviteRequest{Invitees: []string{"bob"}})
	noErr(e.svc.Accept(ctx, actor("bob", "ipad"), elsewhere.CallID))
	e.clk.Advance(time.Second)
	noErr(e.svc.Hangup(ctx, actor("carol", ""), elsewhere.CallID))
	timedOut := e.invite("dave", InviteRequest{Invitees: []string{"bob"}, Timeout: 5})
	e.clk.Advance(10 * time.Second)
	inCall := e.invite("erin", InviteRequest{Invitees: []string{"bob"}})
	noErr(e.svc.Accept(ctx, actor("bob", "ipad"), inCall.CallID))
	e.settings(func(s *settings.Settings) { s.CallWaiting = true })
	ringing := e.invite("frank", InviteRequest{Invitees: []string{"bob"}})
	e.clk.Advance(3 * time.Second)

	evs = noErr(e.svc.DeviceConnected(ctx, testApp, "bob", "phone"))
	want := []string{EventInvited, EventState, "call.state(cancelled)", "call.state(answered_elsewhere)", "call.state(timeout)"}
	if !slices.Equal(types(evs), want) {
		t.Fatalf("sync %q, want %q", types(evs), want)
	}
	if evs[0].CallID != ringing.CallID || evs[0].TimeLeftMS != 27000 || evs[1].CallID != inCall.CallID ||
		evs[2].CallID != cancelled.CallID || evs[3].CallID != elsewhere.CallID || evs[4].CallID != timedOut.CallID {
		t.Errorf("sync order %+v", evs)
	}
	if evs[2].Call.State != StateEnded || evs[2].Seq != evs[2].Call.Seq {
		t.Errorf("final state %+v", evs[2])
	}
	// Reconnecting at once tells only what still goes on.
	noErr(0, e.svc.DeviceDisconnected(ctx, testApp, "bob", "phone"))
	evs = noErr(e.svc.DeviceConnected(ctx, testApp, "bob", "phone"))
	if !slices.Equal(types(evs), []string{EventInvited, EventState}) {
		t.Errorf("second sync %q", types(evs))
	}
	sess := noErr(e.st.Session(ctx, testApp, "bob", "phone"))
	if !sess.DisconnectedAt.IsZero() || !sess.ConnectedAt.Equal(e.clk.Now()) {
		t.Errorf("session %+v", sess)
	}
	// The caller's other device learns of the ringing call it placed.
	evs = noErr(e.svc.DeviceConnected(ctx, testApp, "frank", "tablet"))
	if !slices.Equal(types(evs), []string{EventState}) || evs[0].Call.State != StateRinging {
		t.Errorf("caller sync %q", types(evs))
	}
}

func TestUnbindDevice(t *testing.T) {
	e := newEnv(t)
	e.register("bob", "phone", store.KindVoIP)
	e.register("bob", "phone", store.KindAlert)
	keep := e.register("bob", "ipad", store.KindVoIP)
	noErr(0, e.svc.UnbindDevice(ctx, testApp, "bob", "phone"))
	regs := noErr(e.st.Registrations(ctx, testApp, "bob"))
	if len(regs) != 1 || regs[0].Token != keep {
		t.Fatalf("%+v", regs)
	}
	wantCode(t, e.svc.UnbindDevice(ctx, testApp, "bob", ""), CodeBadField)
	wantCode(t, e.svc.DeviceStateChanged(ctx, testApp, "bob", "x", "asleep"), CodeBadField)
}

func TestListAndGet(t *testing.T) {
	e := newEnv(t)
	c1 := e.invite("alice", InviteRequest{Invitees: []string{"bob"}, Data: `{"k":1}`})
	e.clk.Advance(time.Second)
	c2 := e.invite("carol", InviteRequest{Invitees: []string{"dave"}})
	noErr(e.svc.Cancel(ctx, actor("alice", ""), c1.CallID))
	list := noErr(e.svc.List(ctx, testApp, store.CallFilter{}))
	if len(list) != 2 || list[0].CallID != c2.CallID || list[1].EndReason != EndCancelled || list[1].Data != `{"k":1}` || list[1].UUID != c1.UUID {
		t.Fatalf("%+v", list)
	}
	list = noErr(e.svc.List(ctx, testApp, store.CallFilter{UserID: "bob"}))
	if len(list) != 1 || list[0].CallID != c1.CallID {
		t.Fatalf("%+v", list)
	}
	_, err := e.svc.Get(ctx, testApp, "missing")
	wantCode(t, err, CodeCallNotFound)
}

func TestConcurrentInvitesOneRings(t *testing.T) {
	e := newEnv(t)
	const n = 8
	results := make(chan *Call, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			c, err := e.svc.Invite(ctx, actor("caller"+string(rune('a'+i)), ""), InviteRequest{Invitees: []string{"bob"}, Media: MediaAudio})
			results <- c
			errs <- err
		}()
	}
	ringing := 0
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if c := <-results; c.State == StateRinging {
			ringing++
		}
	}
	if ringing != 1 || e.svc.Ringing() != 1 {
		t.Fatalf("%d calls ring for bob (Ringing %d)", ringing, e.svc.Ringing())
	}
}
