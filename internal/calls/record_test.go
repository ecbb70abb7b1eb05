package calls

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/settings"
)

// TestEndRules checks when a call ends, and why, from its participants'
// outcomes alone.
func TestEndRules(t *testing.T) {
	tests := []struct {
		name       string
		state      string
		callerLeft bool
		outcomes   []string
		want       string // end reason, "" = goes on
	}{
		{"1:1 ringing", StateRinging, false, []string{OutcomeRinging}, ""},
		{"1:1 declined", StateRinging, false, []string{OutcomeDeclined}, EndDeclined},
		{"1:1 busy", StateRinging, false, []string{OutcomeBusy}, EndBusy},
		{"1:1 timeout", StateRinging, false, []string{OutcomeTimeout}, EndTimeout},
		{"group one still rings", StateRinging, false, []string{OutcomeDeclined, OutcomeRinging}, ""},
		{"group all busy", StateRinging, false, []string{OutcomeBusy, OutcomeBusy}, EndBusy},
		{"group declined and busy", StateRinging, false, []string{OutcomeBusy, OutcomeDeclined}, EndDeclined},
		{"group declined and timeout", StateRinging, false, []string{OutcomeDeclined, OutcomeTimeout}, EndTimeout},
		{"answered two in", StateAnswered, false, []string{OutcomeAccepted}, ""},
		{"answered callee left", StateAnswered, false, []string{OutcomeLeft}, EndHangup},
		{"answered caller left", StateAnswered, true, []string{OutcomeAccepted}, EndHangup},
		{"answered caller left two remain", StateAnswered, true, []string{OutcomeAccepted, OutcomeAccepted}, ""},
		{"answered caller left one accepted one ringing", StateAnswered, true, []string{OutcomeAccepted, OutcomeRinging}, ""},
		{"answered caller and one ringing", StateAnswered, false, []string{OutcomeLeft, OutcomeRinging}, ""},
		{"answered caller alone", StateAnswered, false, []string{OutcomeLeft, OutcomeTimeout, OutcomeDeclined}, EndHangup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &record{Call: Call{CallID: "c", State: tt.state, CallerLeft: tt.callerLeft}}
			for i, o := range tt.outcomes {
				r.Invitees = append(r.Invitees, Invitee{User: string(rune('a' + i)), Outcome: o})
			}
			s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Settings: func(context.Context, int64) (settings.Settings, error) { return settings.Defaults(), nil },
			}, nil, bus.NewHub(), &fakePusher{}, nil)
			o := &op{s: s, ctx: ctx, ac: &active{rec: r}, rec: r, now: t0}
			o.maybeEnd()
			if o.endReason != tt.want {
				t.Fatalf("end reason %q, want %q", o.endReason, tt.want)
			}
			if tt.want != "" && (r.State != StateEnded || r.ringingInvitees() != 0 || r.EndedAt == nil) {
				t.Fatalf("ended call %+v", r.Call)
			}
		})
	}
}

func TestRecordRoundTripAndLog(t *testing.T) {
	now := t0
	r := &record{Call: Call{CallID: "c1", SDKAppID: 1, Caller: "alice", State: StateAnswered, CreatedAt: now, AnsweredAt: timePtr(now.Add(time.Second)),
		Seq: 3, Data: "secret", Invitees: []Invitee{{User: "bob", Outcome: OutcomeAccepted, RingDeadline: now.Add(30 * time.Second)}}, PushIDs: []string{"p"}},
		Ring: map[string]*ringState{"bob": {Rang: true, Covered: []string{"phone"}}}}
	sc, err := r.toStore(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Participants) != 2 || sc.Participants[0].Role != "caller" || sc.Participants[1].RingDeadline != now.Add(30*time.Second) || sc.AnsweredAt.IsZero() {
		t.Fatalf("%+v", sc)
	}
	back, err := fromStore(sc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Ring["bob"].Covered[0] != "phone" || !back.AnsweredAt.Equal(*r.AnsweredAt) || back.Invitees[0].User != "bob" {
		t.Fatalf("%+v", back)
	}
	// Without a Doc the columns are enough.
	sc.Doc = nil
	back, err = fromStore(sc)
	if err != nil || back.Invitees[0].Outcome != OutcomeAccepted || back.State != StateAnswered {
		t.Fatalf("%+v %v", back, err)
	}
	// A clone shares nothing.
	c := r.clone()
	c.Invitees[0].Outcome = "x"
	c.Ring["bob"].Covered[0] = "x"
	*c.AnsweredAt = time.Time{}
	if r.Invitees[0].Outcome != OutcomeAccepted || r.Ring["bob"].Covered[0] != "phone" || r.AnsweredAt.IsZero() {
		t.Fatal("clone shares state")
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "call", r)
	if !strings.Contains(b.String(), "call.call_id=c1") || strings.Contains(b.String(), "secret") {
		t.Fatalf("log %s", b.String())
	}
}

// The events of one change share one encoding of the call (op.payload);
// what a device gets must still be exactly json.Marshal's bytes, whatever
// the event's own fields, and a new snapshot must not get the last one's.
func TestPayloadIsMarshal(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 123e6, time.UTC)
	answered := now.Add(time.Second)
	call := &Call{CallID: "c1", SDKAppID: 1, UUID: "0b7e3a52-64c1-4a57-9d2e-3c1f0e9b8a71", Timeout: 30,
		Caller: "alice", Media: MediaVideo, Data: `<b>&"x"</b>`, State: StateAnswered, CreatedAt: now,
		AnsweredAt: &answered, Seq: 2, PushIDs: []string{"p1"},
		Invitees: []Invitee{{User: "bob", Outcome: OutcomeAccepted, InvitedAt: now, RingDeadline: now.Add(30 * time.Second),
			RespondedAt: &answered, DeviceID: "phone", Devices: []DeviceOutcome{{DeviceID: "phone", Outcome: OutcomeAccepted}}}}}
	later := cloneCall(call) // another snapshot of the same call, one change on
	later.Seq, later.State = 3, StateEnded

	o := &op{}
	tests := []struct {
		name string
		ev   Event
	}{
		{"no call", Event{Type: EventEnded, CallID: "c1", Seq: 3, At: now}},
		{"every field", Event{Type: EventInvited, CallID: "c1", Seq: 2, At: now, User: "alice", DeviceID: "phone",
			Reason: "x", TimeLeftMS: 29000, Call: call}},
		{"same snapshot, fewer fields", Event{Type: EventAccepted, CallID: "c1", Seq: 2, At: now, Call: call}},
		{"same snapshot, html in fields", Event{Type: EventState, CallID: "<c1>", Seq: 2, At: now, User: "a&b", Call: call}},
		{"next snapshot", Event{Type: EventEnded, CallID: "c1", Seq: 3, At: now, Reason: "hangup", Call: &later}},
		{"first snapshot again", Event{Type: EventState, CallID: "c1", Seq: 2, At: now, Call: call}},
	}
	for _, tt := range tests {
		want, err := json.Marshal(tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.payload(tt.ev); string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, want)
		}
	}
}
