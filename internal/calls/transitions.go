package calls

import (
	"context"
	"net/http"
	"time"
)

// retryDelay is when a ring timeout that could not be stored is tried again.
const retryDelay = 5 * time.Second

// onCall runs a change on an active call. A call not in memory is loaded
// from the store only to say why nothing can change (not yours, ended).
func (s *Service) onCall(ctx context.Context, a Actor, callID string, fn func(o *op) error) (*Call, error) {
	if ac := s.activeCall(a.SDKAppID, callID); ac != nil {
		return s.change(ctx, ac, fn)
	}
	rec, err := s.stored(ctx, a.SDKAppID, callID)
	if err != nil {
		return nil, err
	}
	if err := checkActive(rec, a, callID); err != nil {
		return nil, err
	}
	return nil, newError(CodeUnavailable, http.StatusServiceUnavailable, "call %q is active but not loaded by this server; retry", callID)
}

// checkActive refuses a user who is not in the call, then an ended call.
func checkActive(r *record, a Actor, callID string) *Error {
	if !r.isParticipant(a.UserID) {
		return errNotParticipant(callID)
	}
	if r.State == StateEnded {
		return errEnded(r)
	}
	return nil
}

// ringingInvitee returns the actor's invitation if it rings, else why not.
func ringingInvitee(r *record, a Actor, verb string) (*Invitee, *Error) {
	inv := r.invitee(a.UserID)
	if inv == nil {
		return nil, newError(CodeNotRinging, http.StatusConflict, "the caller cannot %s their own call", verb)
	}
	if inv.Outcome != OutcomeRinging {
		return nil, newError(CodeNotRinging, http.StatusConflict, "your invitation no longer rings (%s)", inv.Outcome)
	}
	return inv, nil
}

// Accept answers the call on the actor's device. The first accept
// answers the call; the user's other devices are told answered elsewhere.
func (s *Service) Accept(ctx context.Context, a Actor, callID string) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) {
		return s.onCall(ctx, a, callID, func(o *op) error {
			if err := checkActive(o.rec, a, callID); err != nil {
				return err
			}
			inv, err := ringingInvitee(o.rec, a, "accept")
			if err != nil {
				return err
			}
			o.stopRinging(inv, OutcomeAccepted, OutcomeAnsweredElsewhere)
			setDevice(inv, a.DeviceID, OutcomeAccepted)
			inv.DeviceID = a.DeviceID
			first := o.rec.AnsweredAt == nil
			if first {
				o.rec.State = StateAnswered
				o.rec.AnsweredAt = timePtr(o.now)
			}
			ev := o.next(EventAccepted, a.UserID)
			ev.DeviceID = a.DeviceID
			o.sendAll(ev, a.UserID)
			o.sendActor(a.UserID, a.DeviceID, ev, EventAnsweredElsewhere)
			if first {
				o.hook(WebhookAnswered, o.rec.view())
			}
			return nil
		})
	})
}

// Reject declines the call ("declined", the default) or answers busy.
func (s *Service) Reject(ctx context.Context, a Actor, callID, reason string) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) {
		if reason == "" {
			reason = RejectDeclined
		}
		if reason != RejectDeclined && reason != RejectBusy {
			return nil, badRequest(CodeBadField, "reason must be %q or %q (got %q)", RejectDeclined, RejectBusy, reason)
		}
		return s.onCall(ctx, a, callID, func(o *op) error {
			if err := checkActive(o.rec, a, callID); err != nil {
				return err
			}
			inv, err := ringingInvitee(o.rec, a, "reject")
			if err != nil {
				return err
			}
			o.stopRinging(inv, reason, OutcomeRejectedElsewhere)
			setDevice(inv, a.DeviceID, reason)
			ev := o.next(EventRejected, a.UserID)
			ev.DeviceID = a.DeviceID
			ev.Reason = reason
			o.sendAll(ev, a.UserID)
			o.sendActor(a.UserID, a.DeviceID, ev, EventRejectedElsewhere)
			o.maybeEnd()
			return nil
		})
	})
}

// Cancel stops a call that still rings; only its caller may.
func (s *Service) Cancel(ctx context.Context, a Actor, callID string) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) {
		return s.onCall(ctx, a, callID, func(o *op) error {
			if err := checkActive(o.rec, a, callID); err != nil {
				return err
			}
			if a.UserID != o.rec.Caller {
				return newError(CodeNotCaller, http.StatusForbidden, "only the caller can cancel a call; reject it instead")
			}
			return o.cancel(a)
		})
	})
}

// cancel is Cancel once the actor is known to be the caller.
func (o *op) cancel(a Actor) error {
	if o.rec.State == StateAnswered {
		return newError(CodeAlreadyAnswered, http.StatusConflict, "the call was answered: hang up instead")
	}
	for i := range o.rec.Invitees {
		if inv := &o.rec.Invitees[i]; inv.Outcome == OutcomeRinging {
			o.stopRinging(inv, OutcomeCancelled, OutcomeCancelled)
		}
	}
	ev := o.next(EventCancelled, a.UserID)
	ev.DeviceID = a.DeviceID
	o.sendAll(ev)
	o.end(EndCancelled)
	return nil
}

// Hangup leaves the call: the caller, or an invitee who accepted. The
// caller hanging up a call that still rings cancels it. The call ends when
// fewer than two remain.
func (s *Service) Hangup(ctx context.Context, a Actor, callID string) (*Call, error) {
	return s.idempotent(ctx, a, func() (*Call, error) {
		return s.onCall(ctx, a, callID, func(o *op) error {
			r := o.rec
			if err := checkActive(r, a, callID); err != nil {
				return err
			}
			if a.UserID == r.Caller {
				if r.CallerLeft {
					return newError(CodeNotInCall, http.StatusConflict, "you already left the call")
				}
				if r.State == StateRinging {
					return o.cancel(a)
				}
				r.CallerLeft = true
			} else {
				inv := r.invitee(a.UserID)
				switch inv.Outcome {
				case OutcomeAccepted:
				case OutcomeRinging:
					return newError(CodeNotInCall, http.StatusConflict, "you have not answered the call: reject it instead")
				default:
					return newError(CodeNotInCall, http.StatusConflict, "you are not in the call (%s)", inv.Outcome)
				}
				inv.Outcome = OutcomeLeft
				inv.LeftAt = timePtr(o.now)
			}
			ev := o.next(EventLeft, a.UserID)
			ev.DeviceID = a.DeviceID
			o.sendAll(ev)
			o.maybeEnd()
			return nil
		})
	})
}

// ringTimeout applies the end of an invitee's ringing.
func (s *Service) ringTimeout(ctx context.Context, ac *active, user string) {
	_, err := s.change(ctx, ac, func(o *op) error {
		if ac.ended {
			return nil
		}
		inv := o.rec.invitee(user)
		if inv == nil || inv.Outcome != OutcomeRinging {
			return nil
		}
		o.stopRinging(inv, OutcomeTimeout, OutcomeTimeout)
		o.sendAll(o.next(EventTimeout, user))
		o.maybeEnd()
		return nil
	})
	if err != nil {
		// Try again shortly rather than leave the user ringing forever.
		ac.mu.Lock()
		s.log.Error("calls: ring timeout not applied; retrying", "call", ac.rec, "user", user, "err", err)
		if !ac.ended {
			s.armTimer(ac, user, retryDelay)
		}
		ac.mu.Unlock()
	}
}
