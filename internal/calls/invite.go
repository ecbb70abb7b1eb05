package calls

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ringd/ringd/internal/clock"
	"github.com/ringd/ringd/internal/settings"
)

// Limits of an invitation.
const (
	MaxDataBytes     = 4 << 10
	MaxFieldBytes    = 128 // group ID, room ID, caller name
	MaxPushTextBytes = 256
	MaxUserIDBytes   = 32
	MaxTimeout       = settings.MaxRingTimeout
)

// ValidUserID is the rule for user IDs: 1 to 32 bytes of printable ASCII
// (Tencent's rule, as auth and httpapi apply it).
func ValidUserID(u string) bool {
	if u == "" || len(u) > MaxUserIDBytes {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] > 0x7e {
			return false
		}
	}
	return true
}

// newCallID is 16 random bytes in unpadded base64url: 22 URL-safe characters.
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func maxInvitees(set settings.Settings) int {
	if set.MaxInvitees > 0 {
		return set.MaxInvitees
	}
	return settings.DefaultMaxInvitees
}

// validateInvitees checks new invitees: 1 to limit of them, valid IDs,
// distinct, not the caller and not already invited.
func validateInvitees(caller string, invitees []string, limit int, existing map[string]bool) *Error {
	if len(invitees) == 0 {
		return badRequest(CodeBadInvitees, "invite at least one user")
	}
	if len(invitees) > limit {
		return badRequest(CodeTooManyInvitees, "at most %d invitees per call (got %d)", limit, len(invitees))
	}
	seen := make(map[string]bool, len(invitees))
	for _, u := range invitees {
		switch {
		case !ValidUserID(u):
			return badRequest(CodeBadInvitees, "invitee %q is not a user ID (1 to %d bytes of printable ASCII)", u, MaxUserIDBytes)
		case u == caller:
			return badRequest(CodeBadInvitees, "the caller cannot invite themselves")
		case seen[u]:
			return badRequest(CodeBadInvitees, "invitee %q is listed twice", u)
		case existing[u]:
			return badRequest(CodeBadInvitees, "invitee %q is already invited to the call", u)
		}
		seen[u] = true
	}
	return nil
}

func validateInvite(a Actor, req InviteRequest, set settings.Settings) *Error {
	if !ValidUserID(a.UserID) {
		return badRequest(CodeBadField, "caller %q is not a user ID (1 to %d bytes of printable ASCII)", a.UserID, MaxUserIDBytes)
	}
	if err := validateInvitees(a.UserID, req.Invitees, maxInvitees(set), nil); err != nil {
		return err
	}
	if req.Media != MediaAudio && req.Media != MediaVideo {
		return badRequest(CodeBadMedia, "media must be %q or %q (got %q)", MediaAudio, MediaVideo, req.Media)
	}
	if req.Timeout < 0 || req.Timeout > MaxTimeout {
		return badRequest(CodeBadTimeout, "timeout must be 1 to %d seconds, or 0 for the app's default (got %d)", MaxTimeout, req.Timeout)
	}
	if len(req.Data) > MaxDataBytes {
		return badRequest(CodeDataTooLarge, "data is %d bytes; at most %d", len(req.Data), MaxDataBytes)
	}
	if !utf8.ValidString(req.Data) {
		return badRequest(CodeBadField, "data must be UTF-8 text")
	}
	fields := [...]struct {
		name, v string
		limit   int
	}{
		{"group_id", req.GroupID, MaxFieldBytes}, {"room_id", req.RoomID, MaxFieldBytes}, {"caller_name", req.CallerName, MaxFieldBytes},
		{"push.title", req.Push.Title, MaxPushTextBytes}, {"push.body", req.Push.Body, MaxPushTextBytes}, {"push.sound", req.Push.Sound, MaxPushTextBytes},
	}
	for _, f := range fields {
		if len(f.v) > f.limit {
			return badRequest(CodeBadField, "%s is %d bytes; at most %d", f.name, len(f.v), f.limit)
		}
		if !utf8.ValidString(f.v) {
			return badRequest(CodeBadField, "%s must be UTF-8 text", f.name)
		}
	}
	return nil
}

// ringTimeout is the request's timeout or the app's default, in seconds.
func ringTimeout(req InviteRequest, set settings.Settings) int {
	switch {
	case req.Timeout > 0:
		return req.Timeout
	case set.RingTimeout > 0 && set.RingTimeout <= MaxTimeout:
		return set.RingTimeout
	}
	return settings.DefaultRingTimeout
}

func errRateLimited(perMinute int) *Error {
	return newError(CodeRateLimited, http.StatusTooManyRequests, "too many invitations: at most %d a minute", perMinute)
}

// Invite starts a call from the actor to the invitees.
func (s *Service) Invite(ctx context.Context, a Actor, req InviteRequest) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) { return s.invite(ctx, a, req) })
}

func (s *Service) invite(ctx context.Context, a Actor, req InviteRequest) (*Call, error) {
	set, err := s.settings(ctx, a.SDKAppID)
	if err != nil {
		return nil, err
	}
	if err := validateInvite(a, req, set); err != nil {
		return nil, err
	}
	if !s.limiter.allow(userKey{a.SDKAppID, a.UserID}, perMinute(set), s.clock.Now()) {
		return nil, errRateLimited(perMinute(set))
	}
	now := s.now()
	timeout := ringTimeout(req, set)
	rec := &record{Call: Call{
		CallID: newCallID(), SDKAppID: a.SDKAppID, UUID: uuid.NewString(), Timeout: timeout,
		Caller: a.UserID, CallerName: req.CallerName, GroupID: req.GroupID, Media: req.Media,
		RoomID: req.RoomID, Data: req.Data, State: StateRinging, CreatedAt: now,
		Invitees: make([]Invitee, 0, len(req.Invitees)), PushIDs: []string{},
	}, PushOptions: req.Push}
	for _, u := range req.Invitees {
		rec.Invitees = append(rec.Invitees, Invitee{
			User: u, Outcome: OutcomeRinging, InvitedAt: now, RingDeadline: now.Add(time.Duration(timeout) * time.Second),
		})
	}
	ac := &active{rec: rec, timers: map[string]clock.Timer{}, users: map[string]bool{}}
	ac.mu.Lock()
	defer ac.mu.Unlock()

	// Line busy is decided and the new call's users registered in one step,
	// so two calls to the same user at once cannot both ring.
	var busy []string
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, newError(CodeUnavailable, http.StatusServiceUnavailable, "the call service is shutting down")
	}
	s.calls[rec.CallID] = ac
	for i := range rec.Invitees {
		inv := &rec.Invitees[i]
		if !set.CallWaiting && s.busyLocked(a.SDKAppID, inv.User, rec.CallID) {
			inv.Outcome = OutcomeBusy
			inv.RespondedAt = timePtr(now)
			busy = append(busy, inv.User)
		}
	}
	for _, u := range rec.involved() {
		s.indexLocked(ac, u)
	}
	s.mu.Unlock()

	c, err := s.changeLocked(ctx, ac, func(o *op) error {
		o.set = &set
		o.now = now
		var ringing []string
		for _, inv := range o.rec.Invitees {
			if inv.Outcome == OutcomeRinging {
				ringing = append(ringing, inv.User)
			}
		}
		o.prefetchRegistrations(ringing)
		for i := range o.rec.Invitees {
			if inv := &o.rec.Invitees[i]; inv.Outcome == OutcomeRinging {
				o.ringInvitee(inv)
			}
		}
		ev := o.next(EventInvited, a.UserID)
		ev.DeviceID = a.DeviceID
		for i := range o.rec.Invitees {
			if inv := &o.rec.Invitees[i]; inv.Outcome == OutcomeRinging {
				e := ev
				e.TimeLeftMS = timeLeft(inv, now)
				o.send(inv.User, e, "", "")
			}
		}
		o.send(a.UserID, o.variant(ev, EventState), "", "")
		o.hook(WebhookStarted, o.rec.view())
		o.rejectBusy(busy)
		o.maybeEnd()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("calls: call started", "call", c, "busy", len(busy))
	return c, nil
}

// rejectBusy tells of invitees found busy: one call.rejected each, sent to
// the call's recipients and to the busy user.
func (o *op) rejectBusy(busy []string) {
	for _, u := range busy {
		ev := o.next(EventRejected, u)
		ev.Reason = RejectBusy
		o.sendAll(ev)
		o.send(u, ev, "", "")
	}
}

func perMinute(set settings.Settings) int {
	if set.InvitesPerMinute > 0 {
		return set.InvitesPerMinute
	}
	return settings.DefaultInvitesPerMinute
}

// InviteMore adds invitees to a group call; the caller or an invitee in
// the call may do it.
func (s *Service) InviteMore(ctx context.Context, a Actor, callID string, invitees []string) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) {
		return s.onCall(ctx, a, callID, func(o *op) error {
			r := o.rec
			if err := checkActive(r, a, callID); err != nil {
				return err
			}
			if r.GroupID == "" {
				return newError(CodeNotGroupCall, http.StatusConflict, "only a call with a group ID can invite more users")
			}
			if inv := r.invitee(a.UserID); (a.UserID == r.Caller && r.CallerLeft) || (inv != nil && inv.Outcome != OutcomeAccepted) {
				return newError(CodeNotInCall, http.StatusConflict, "only the caller or an invitee in the call can invite more users")
			}
			set := o.settings()
			existing := map[string]bool{}
			for _, inv := range r.Invitees {
				existing[inv.User] = true
			}
			limit := maxInvitees(set) - len(r.Invitees)
			if limit <= 0 && len(invitees) > 0 {
				return badRequest(CodeTooManyInvitees, "the call already has the most invitees allowed (%d)", maxInvitees(set))
			}
			if err := validateInvitees(r.Caller, invitees, limit, existing); err != nil {
				return err
			}
			if !s.limiter.allow(userKey{a.SDKAppID, a.UserID}, perMinute(set), s.clock.Now()) {
				return errRateLimited(perMinute(set))
			}
			deadline := o.now.Add(time.Duration(r.Timeout) * time.Second)
			first := len(r.Invitees)
			var busy []string
			s.mu.Lock()
			for _, u := range invitees {
				inv := Invitee{User: u, Outcome: OutcomeRinging, InvitedAt: o.now, RingDeadline: deadline}
				if !set.CallWaiting && s.busyLocked(a.SDKAppID, u, callID) {
					inv.Outcome = OutcomeBusy
					inv.RespondedAt = timePtr(o.now)
					busy = append(busy, u)
				} else {
					s.indexLocked(o.ac, u)
				}
				r.Invitees = append(r.Invitees, inv)
			}
			s.mu.Unlock()
			var added []string
			for i := first; i < len(r.Invitees); i++ {
				if inv := &r.Invitees[i]; inv.Outcome == OutcomeRinging {
					added = append(added, inv.User)
				}
			}
			o.prefetchRegistrations(added)
			for _, u := range added {
				o.ringInvitee(r.invitee(u))
			}
			ev := o.next(EventInviteesAdded, a.UserID)
			ev.DeviceID = a.DeviceID
			p := o.payload(ev)
			for _, u := range r.recipients() {
				if inv := r.invitee(u); inv != nil && contains(added, u) {
					e := o.variant(ev, EventInvited)
					e.TimeLeftMS = timeLeft(inv, o.now)
					o.send(u, e, "", "")
					continue
				}
				o.sendRaw(u, p, "", "")
			}
			o.rejectBusy(busy)
			o.maybeEnd()
			return nil
		})
	})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
