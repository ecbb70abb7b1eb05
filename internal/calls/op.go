package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// op is one change of one call, made under the call's lock: what fn does
// to the record, the events it produces (in Seq order), the pushes it
// sends (written with the record) and the webhooks to emit once the
// change is stored.
type op struct {
	s   *Service
	ctx context.Context
	ac  *active
	rec *record
	now time.Time
	set *settings.Settings
	// regs are the registrations of the users this change rings, read in
	// one query (nil: read each user's when needed).
	regs map[string][]store.Registration

	pubs      []publication
	types     []string // event types produced, for metrics
	hooks     []hook
	staged    []*push.Staged // pushes of this change, written with its record
	endReason string         // set when this change ended the call
	dirty     bool           // the record changed without an event (a push recorded)

	// encodedCall is the JSON of encodedFor, the snapshot of the last
	// event encoded (payload).
	encodedFor  *Call
	encodedCall []byte
}

type publication struct {
	user string
	msg  bus.Message
}

type hook struct {
	typ     string
	payload any
}

// now is the service's time, in UTC and without a monotonic reading, so
// that records survive a round trip through JSON unchanged.
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }

// change runs fn on the call under its lock, then stores the result and
// publishes its events. fn returning an error leaves the call unchanged.
func (s *Service) change(ctx context.Context, ac *active, fn func(o *op) error) (*Call, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return s.changeLocked(ctx, ac, fn)
}

// changeLocked is change with ac.mu held. A new call (Seq 0) that fails
// is dropped from memory.
func (s *Service) changeLocked(ctx context.Context, ac *active, fn func(o *op) error) (*Call, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	o := &op{s: s, ctx: ctx, ac: ac, rec: ac.rec, now: s.now()}
	backup := ac.rec.clone()
	fail := func(err error) (*Call, error) {
		ac.rec = backup
		if backup.Seq == 0 {
			ac.ended = true
		}
		o.s.pusher.Drop(o.staged) // none was written (persist drops its own)
		s.syncTimers(ac, o.now)
		s.syncIndex(ac)
		s.syncRinging(ac)
		return nil, err
	}
	if err := fn(o); err != nil {
		return fail(err)
	}
	if o.rec.Seq == backup.Seq && !o.dirty {
		return o.rec.view(), nil // nothing changed
	}
	staged := o.staged
	o.staged = nil // persist writes them or drops them
	if err := s.persist(ctx, o.rec, o.now, staged); err != nil {
		s.log.Error("calls: cannot store call change", "call", o.rec, "err", err)
		return fail(err)
	}
	if o.rec.State == StateEnded {
		ac.ended = true
	}
	for _, p := range o.pubs {
		s.hub.Publish(o.rec.SDKAppID, p.user, p.msg)
	}
	s.syncTimers(ac, o.now)
	s.syncIndex(ac)
	s.syncRinging(ac)
	for _, t := range o.types {
		s.m.events.WithLabelValues(t).Inc()
	}
	if o.endReason != "" {
		s.m.calls.WithLabelValues(o.endReason).Inc()
		s.log.Info("calls: call ended", "call", o.rec)
	}
	if s.emitter != nil {
		hctx := context.WithoutCancel(ctx)
		for _, h := range o.hooks {
			s.emitter.Emit(hctx, o.rec.SDKAppID, h.typ, h.payload)
		}
	}
	return o.rec.view(), nil
}

// persist writes the record and the change's pushes, in a transaction it
// may share with the changes of other calls (commit.go).
func (s *Service) persist(ctx context.Context, r *record, now time.Time, staged []*push.Staged) error {
	sc, err := r.toStore(now)
	if err != nil {
		s.pusher.Drop(staged)
		return err
	}
	if err := s.commit.Do(ctx, callWrite{call: sc, pushes: staged}); err != nil {
		return fmt.Errorf("calls: store call %s: %w", r.CallID, err)
	}
	return nil
}

// settings returns the app's settings, the defaults if they cannot be read
// (a change already under way does not fail for want of them).
func (o *op) settings() settings.Settings {
	if o.set == nil {
		set, err := o.s.settings(o.ctx, o.rec.SDKAppID)
		if err != nil {
			o.s.log.Warn("calls: using default settings", "sdkappid", o.rec.SDKAppID, "err", err)
			set = settings.Defaults()
		}
		o.set = &set
	}
	return *o.set
}

// next makes the event of a change: it bumps Seq and snapshots the call.
func (o *op) next(typ, user string) Event {
	o.rec.Seq++
	o.types = append(o.types, typ)
	return Event{Type: typ, CallID: o.rec.CallID, Seq: o.rec.Seq, At: o.now, User: user, Call: o.rec.view()}
}

// variant is the same change told differently to some devices.
func (o *op) variant(ev Event, typ string) Event {
	ev.Type = typ
	if !slices.Contains(o.types, typ) {
		o.types = append(o.types, typ)
	}
	return ev
}

// payload encodes ev. The events of one change share the call's
// snapshot (next makes it), and an invitation sends one event per
// invitee: so the snapshot is encoded once and put after the event's own
// fields, where json.Marshal would put it (Call is Event's last field).
// A group call of 16 encoded its call 17 times before.
func (o *op) payload(ev Event) json.RawMessage {
	if ev.Call == nil {
		return mustJSON(ev)
	}
	if o.encodedFor != ev.Call {
		o.encodedFor, o.encodedCall = ev.Call, mustJSON(ev.Call)
	}
	bare := ev
	bare.Call = nil
	b := mustJSON(bare)
	if len(b) < len(nullCall) || string(b[len(b)-len(nullCall):]) != nullCall {
		return mustJSON(ev) // Call is no longer last: encode it all
	}
	head := b[:len(b)-len(nullCall)+len(callKey)]
	out := make([]byte, 0, len(head)+len(o.encodedCall)+1)
	return append(append(append(out, head...), o.encodedCall...), '}')
}

// nullCall ends an event encoded without its call; callKey is its start.
const (
	nullCall = `,"call":null}`
	callKey  = `,"call":`
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Events hold only strings, numbers and times: this cannot happen.
		panic(fmt.Sprintf("calls: encode event: %v", err))
	}
	return b
}

// send queues ev for the user's devices (all, only one, or all but one).
func (o *op) send(user string, ev Event, only, except string) {
	o.sendRaw(user, o.payload(ev), only, except)
}

func (o *op) sendRaw(user string, payload json.RawMessage, only, except string) {
	o.pubs = append(o.pubs, publication{user: user, msg: bus.Message{
		Kind: bus.KindEvent, Payload: payload, OnlyDevice: only, ExceptDevice: except,
	}})
}

// sendAll queues ev for every recipient but the users in skip.
func (o *op) sendAll(ev Event, skip ...string) {
	p := o.payload(ev)
	for _, u := range o.rec.recipients() {
		if !slices.Contains(skip, u) {
			o.sendRaw(u, p, "", "")
		}
	}
}

// sendActor tells the acting user's devices of their own accept or
// reject: the acting device gets ev, the others the "elsewhere" variant.
func (o *op) sendActor(user, device string, ev Event, elsewhere string) {
	if device != "" {
		o.send(user, ev, device, "")
	}
	o.send(user, o.variant(ev, elsewhere), "", device)
}

func (o *op) hook(typ string, payload any) {
	if o.s.emitter != nil {
		o.hooks = append(o.hooks, hook{typ, payload})
	}
}

// stopRinging ends the invitee's ringing with outcome; the devices still
// ringing get devOutcome. Its ring pushes are expired; a cancel or timeout
// sends the missed-call push and the call.missed webhook.
func (o *op) stopRinging(inv *Invitee, outcome, devOutcome string) {
	inv.Outcome = outcome
	switch outcome {
	case OutcomeAccepted, OutcomeDeclined, OutcomeBusy:
		inv.RespondedAt = timePtr(o.now)
	}
	for i := range inv.Devices {
		if inv.Devices[i].Outcome == OutcomeRinging {
			inv.Devices[i].Outcome = devOutcome
		}
	}
	var ringIDs []string
	for _, p := range inv.Pushes {
		if p.Kind == PushRing {
			ringIDs = append(ringIDs, p.PushID)
		}
	}
	if len(ringIDs) > 0 {
		if err := o.s.expire.Do(o.ctx, pushExpiry{ringIDs, "call_" + outcome}); err != nil {
			o.s.log.Warn("calls: cannot expire ring pushes", "call", o.rec, "user", inv.User, "err", err)
		}
	}
	if outcome != OutcomeTimeout && outcome != OutcomeCancelled {
		return
	}
	if len(ringIDs) > 0 && o.settings().SendMissedCallPush() {
		o.missedPush(inv)
	}
	o.hook(WebhookMissed, &Missed{Call: cloneCall(&o.rec.Call), User: inv.User})
}

// setDevice records a device's outcome, adding the device if unknown.
func setDevice(inv *Invitee, device, outcome string) {
	if device == "" {
		return
	}
	for i := range inv.Devices {
		if inv.Devices[i].DeviceID == device {
			inv.Devices[i].Outcome = outcome
			return
		}
	}
	inv.Devices = append(inv.Devices, DeviceOutcome{DeviceID: device, Outcome: outcome})
}

// maybeEnd ends the call when nobody rings any more and nobody answered,
// or when fewer than two remain in an answered call.
func (o *op) maybeEnd() {
	switch o.rec.State {
	case StateRinging:
		if o.rec.ringingInvitees() == 0 {
			o.end(o.unansweredReason())
		}
	case StateAnswered:
		if o.rec.remaining() < 2 {
			o.end(EndHangup)
		}
	}
}

// unansweredReason says why a call nobody answered ended: busy when every
// invitee was busy, declined when every invitee declined or was busy,
// timeout when someone's ringing timed out, cancelled otherwise.
func (o *op) unansweredReason() string {
	busy, declined, timeout := 0, 0, 0
	for _, inv := range o.rec.Invitees {
		switch inv.Outcome {
		case OutcomeBusy:
			busy++
		case OutcomeDeclined:
			declined++
		case OutcomeTimeout:
			timeout++
		}
	}
	switch n := len(o.rec.Invitees); {
	case busy == n:
		return EndBusy
	case busy+declined == n:
		return EndDeclined
	case timeout > 0:
		return EndTimeout
	}
	return EndCancelled
}

// end ends the call: invitees still ringing are cancelled, and everyone
// is told call.ended.
func (o *op) end(reason string) {
	for i := range o.rec.Invitees {
		if inv := &o.rec.Invitees[i]; inv.Outcome == OutcomeRinging {
			o.stopRinging(inv, OutcomeCancelled, OutcomeCancelled)
		}
	}
	o.rec.State = StateEnded
	o.rec.EndReason = reason
	o.rec.EndedAt = timePtr(o.now)
	o.endReason = reason
	ev := o.next(EventEnded, "")
	ev.Reason = reason
	o.sendAll(ev)
	o.hook(WebhookEnded, o.rec.view())
}

// timeLeft is how long the invitee still rings, at least 1 ms while ringing.
func timeLeft(inv *Invitee, now time.Time) int64 {
	return max(inv.RingDeadline.Sub(now).Milliseconds(), 1)
}
