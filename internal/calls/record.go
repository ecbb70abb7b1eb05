package calls

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// record is the service's full record of a call: the view clients see
// plus what only the service needs. It is stored as store.Call.Doc.
type record struct {
	Call
	PushOptions PushOptions `json:"push_options"`
	// Ring holds, per invitee, how the user's devices were rung.
	Ring map[string]*ringState `json:"ring,omitempty"`
}

// ringState is how one invitee was rung.
type ringState struct {
	// Rang: the user's devices were told of the call (false for an invitee
	// found busy at invite time, who hears of the call only once).
	Rang bool `json:"rang"`
	// Covered lists the device IDs a ring push was aimed at; a device not
	// in it that goes to the background while the user still rings gets
	// its own ring push.
	Covered []string `json:"covered,omitempty"`
}

// LogValue logs a call by its identity and state, never its data.
func (r *record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("call_id", r.CallID),
		slog.Int64("sdkappid", r.SDKAppID),
		slog.String("caller", r.Caller),
		slog.String("state", r.State),
		slog.Int64("seq", r.Seq),
		slog.Int("invitees", len(r.Invitees)),
		slog.String("end_reason", r.EndReason),
	)
}

// LogValue logs a call view like the record.
func (c *Call) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("call_id", c.CallID),
		slog.Int64("sdkappid", c.SDKAppID),
		slog.String("caller", c.Caller),
		slog.String("state", c.State),
		slog.Int64("seq", c.Seq),
		slog.String("end_reason", c.EndReason),
	)
}

func (r *record) ring(user string) *ringState {
	if r.Ring == nil {
		r.Ring = map[string]*ringState{}
	}
	rs := r.Ring[user]
	if rs == nil {
		rs = &ringState{}
		r.Ring[user] = rs
	}
	return rs
}

func (r *record) rang(user string) bool {
	rs := r.Ring[user]
	return rs != nil && rs.Rang
}

// invitee returns the user's invitation, or nil.
func (r *record) invitee(user string) *Invitee {
	for i := range r.Invitees {
		if r.Invitees[i].User == user {
			return &r.Invitees[i]
		}
	}
	return nil
}

func (r *record) isParticipant(user string) bool {
	return user == r.Caller || r.invitee(user) != nil
}

// recipients are the users told of every change: the caller and every
// invitee whose devices were told of the call.
func (r *record) recipients() []string {
	out := make([]string, 0, len(r.Invitees)+1)
	out = append(out, r.Caller)
	for _, inv := range r.Invitees {
		if r.rang(inv.User) {
			out = append(out, inv.User)
		}
	}
	return out
}

// involved are the users this call makes busy: the caller until they
// leave, and invitees ringing or accepted and not left.
func (r *record) involved() []string {
	if r.State == StateEnded {
		return nil
	}
	var out []string
	if !r.CallerLeft {
		out = append(out, r.Caller)
	}
	for _, inv := range r.Invitees {
		if inv.Outcome == OutcomeRinging || inv.Outcome == OutcomeAccepted {
			out = append(out, inv.User)
		}
	}
	return out
}

// ringingInvitees counts invitees still ringing.
func (r *record) ringingInvitees() int {
	n := 0
	for _, inv := range r.Invitees {
		if inv.Outcome == OutcomeRinging {
			n++
		}
	}
	return n
}

// remaining counts who is still in (or still being called into) the call:
// the caller unless they left, accepted invitees, ringing invitees.
func (r *record) remaining() int {
	n := r.ringingInvitees()
	if !r.CallerLeft {
		n++
	}
	for _, inv := range r.Invitees {
		if inv.Outcome == OutcomeAccepted {
			n++
		}
	}
	return n
}

// view is a deep copy of the call as clients see it.
func (r *record) view() *Call {
	c := cloneCall(&r.Call)
	return &c
}

func cloneCall(src *Call) Call {
	c := *src
	c.AnsweredAt = cloneTime(src.AnsweredAt)
	c.EndedAt = cloneTime(src.EndedAt)
	c.PushIDs = slices.Clone(src.PushIDs)
	if c.PushIDs == nil {
		c.PushIDs = []string{}
	}
	c.Invitees = make([]Invitee, len(src.Invitees))
	for i, inv := range src.Invitees {
		inv.RespondedAt = cloneTime(inv.RespondedAt)
		inv.LeftAt = cloneTime(inv.LeftAt)
		inv.Devices = slices.Clone(inv.Devices)
		inv.Pushes = slices.Clone(inv.Pushes)
		c.Invitees[i] = inv
	}
	return c
}

func (r *record) clone() *record {
	out := &record{Call: cloneCall(&r.Call), PushOptions: r.PushOptions}
	if r.PushOptions.VoIP != nil {
		v := *r.PushOptions.VoIP
		out.PushOptions.VoIP = &v
	}
	if r.Ring != nil {
		out.Ring = make(map[string]*ringState, len(r.Ring))
		for u, rs := range r.Ring {
			out.Ring[u] = &ringState{Rang: rs.Rang, Covered: slices.Clone(rs.Covered)}
		}
	}
	return out
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func timePtr(t time.Time) *time.Time { return &t }

// toStore is the record as the store keeps it.
func (r *record) toStore(now time.Time) (*store.Call, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("calls: encode call %s: %w", r.CallID, err)
	}
	sc := &store.Call{
		ID: r.CallID, SDKAppID: r.SDKAppID, Caller: r.Caller, GroupID: r.GroupID, Media: r.Media,
		RoomID: r.RoomID, Data: r.Data, State: r.State, EndReason: r.EndReason, CreatedAt: r.CreatedAt,
		Seq: r.Seq, PushIDs: slices.Clone(r.PushIDs), Doc: doc, UpdatedAt: now,
	}
	if r.AnsweredAt != nil {
		sc.AnsweredAt = *r.AnsweredAt
	}
	if r.EndedAt != nil {
		sc.EndedAt = *r.EndedAt
	}
	callerOutcome := OutcomeCaller
	if r.CallerLeft {
		callerOutcome = OutcomeLeft
	}
	sc.Participants = make([]store.CallParticipant, 0, len(r.Invitees)+1)
	sc.Participants = append(sc.Participants, store.CallParticipant{UserID: r.Caller, Role: "caller", Outcome: callerOutcome})
	for _, inv := range r.Invitees {
		sc.Participants = append(sc.Participants, store.CallParticipant{
			UserID: inv.User, Role: "invitee", Outcome: inv.Outcome, RingDeadline: inv.RingDeadline,
		})
	}
	return sc, nil
}

// fromStore rebuilds a record from the store, from its Doc when it has
// one (always, for calls this service wrote).
func fromStore(sc *store.Call) (*record, error) {
	r := &record{}
	if len(sc.Doc) > 0 {
		if err := json.Unmarshal(sc.Doc, r); err != nil {
			return nil, fmt.Errorf("calls: decode call %s: %w", sc.ID, err)
		}
		return r, nil
	}
	r.Call = Call{
		CallID: sc.ID, SDKAppID: sc.SDKAppID, Caller: sc.Caller, GroupID: sc.GroupID, Media: sc.Media,
		RoomID: sc.RoomID, Data: sc.Data, State: sc.State, EndReason: sc.EndReason, CreatedAt: sc.CreatedAt,
		Seq: sc.Seq, PushIDs: slices.Clone(sc.PushIDs),
	}
	if !sc.AnsweredAt.IsZero() {
		r.AnsweredAt = timePtr(sc.AnsweredAt)
	}
	if !sc.EndedAt.IsZero() {
		r.EndedAt = timePtr(sc.EndedAt)
	}
	for _, p := range sc.Participants {
		switch p.Role {
		case "caller":
			r.CallerLeft = p.Outcome == OutcomeLeft
		default:
			r.Invitees = append(r.Invitees, Invitee{User: p.UserID, Outcome: p.Outcome, RingDeadline: p.RingDeadline})
		}
	}
	return r, nil
}
