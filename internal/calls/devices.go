package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// SyncWindow is how far back a device that connects for the first time is
// told of calls it was invited to that ended.
const SyncWindow = 24 * time.Hour

// DeviceConnected records the device's session and returns what it must
// be told first, in order: call.invited for every call still ringing for
// the user (with the time left), call.state for the other active calls the
// user is in (answered calls; calls the user placed that still ring), then
// call.state with the final outcome of every call the user was invited to
// that ended since the device last disconnected, in the order they ended
// (Reason: this device's outcome). These events are not published on the hub.
func (s *Service) DeviceConnected(ctx context.Context, sdkAppID int64, userID, deviceID string) ([]Event, error) {
	now := s.now()
	since := now.Add(-SyncWindow)
	prev, err := s.st.Session(ctx, sdkAppID, userID, deviceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("calls: session of %q/%q: %w", userID, deviceID, err)
	case !prev.DisconnectedAt.IsZero():
		since = prev.DisconnectedAt
	case !prev.ConnectedAt.IsZero():
		since = prev.ConnectedAt // never saw the disconnect (a crash): resend from its connect
	}
	if err := s.sessions.Do(ctx, &store.Session{SDKAppID: sdkAppID, UserID: userID, DeviceID: deviceID, ConnectedAt: now}); err != nil {
		return nil, fmt.Errorf("calls: store session: %w", err)
	}

	var invited, states []Event
	activeIDs := map[string]bool{}
	for _, ac := range s.activeOf(sdkAppID, userID) {
		ac.mu.Lock()
		if !ac.ended {
			r := ac.rec
			activeIDs[r.CallID] = true
			ev := Event{Type: EventState, CallID: r.CallID, Seq: r.Seq, At: now, User: userID, Call: r.view()}
			if inv := r.invitee(userID); inv != nil && inv.Outcome == OutcomeRinging {
				ev.Type = EventInvited
				ev.User = r.Caller
				ev.TimeLeftMS = timeLeft(inv, now)
				invited = append(invited, ev)
			} else {
				states = append(states, ev)
			}
		}
		ac.mu.Unlock()
	}
	byCreated := func(a, b Event) int { return a.Call.CreatedAt.Compare(b.Call.CreatedAt) }
	slices.SortStableFunc(invited, byCreated)
	slices.SortStableFunc(states, byCreated)
	out := append(invited, states...)

	ended, err := s.st.CallsOfInvitee(ctx, sdkAppID, userID, since)
	if err != nil {
		return nil, fmt.Errorf("calls: calls of %q: %w", userID, err)
	}
	// In the order they ended.
	slices.SortStableFunc(ended, func(a, b store.Call) int { return a.EndedAt.Compare(b.EndedAt) })
	for i := range ended {
		sc := &ended[i]
		if sc.State != StateEnded || activeIDs[sc.ID] || sc.EndedAt.Before(since) {
			continue
		}
		r, err := fromStore(sc)
		if err != nil {
			s.log.Warn("calls: skipping undecodable call in sync", "call_id", sc.ID, "err", err)
			continue
		}
		inv := r.invitee(userID)
		if inv == nil {
			continue
		}
		out = append(out, Event{Type: EventState, CallID: r.CallID, Seq: r.Seq, At: now, User: userID,
			Reason: deviceOutcome(inv, deviceID), Call: r.view()})
	}
	return out, nil
}

// deviceOutcome is how the call ended for one device of an invitee.
func deviceOutcome(inv *Invitee, deviceID string) string {
	for _, d := range inv.Devices {
		if d.DeviceID == deviceID && d.Outcome != OutcomeRinging {
			return d.Outcome
		}
	}
	if inv.Outcome == OutcomeAccepted && inv.DeviceID != deviceID {
		return OutcomeAnsweredElsewhere
	}
	return inv.Outcome
}

// activeOf lists the active calls the user is involved in.
func (s *Service) activeOf(sdkAppID int64, userID string) []*active {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byUser[userKey{sdkAppID, userID}]
	out := make([]*active, 0, len(m))
	for _, ac := range m {
		out = append(out, ac)
	}
	return out
}

// DeviceDisconnected records when the device's session ended.
func (s *Service) DeviceDisconnected(ctx context.Context, sdkAppID int64, userID, deviceID string) error {
	sess, err := s.st.Session(ctx, sdkAppID, userID, deviceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sess = &store.Session{SDKAppID: sdkAppID, UserID: userID, DeviceID: deviceID}
	case err != nil:
		return fmt.Errorf("calls: session of %q/%q: %w", userID, deviceID, err)
	}
	sess.DisconnectedAt = s.now()
	if err := s.sessions.Do(ctx, sess); err != nil {
		return fmt.Errorf("calls: store session: %w", err)
	}
	return nil
}

// DeviceStateChanged applies a device's foreground/background report. A
// device that goes to the background while its user still rings, and that
// no ring push reached (it was in the foreground when the call rang), gets
// a ring push of its own.
func (s *Service) DeviceStateChanged(ctx context.Context, sdkAppID int64, userID, deviceID, state string) error {
	switch state {
	case DeviceForeground:
		return nil
	case DeviceBackground:
	default:
		return badRequest(CodeBadField, "state must be %q or %q (got %q)", DeviceForeground, DeviceBackground, state)
	}
	if deviceID == "" {
		return nil
	}
	var errs []error
	for _, ac := range s.activeOf(sdkAppID, userID) {
		_, err := s.change(ctx, ac, func(o *op) error {
			if ac.ended {
				return nil
			}
			inv := o.rec.invitee(userID)
			if inv == nil || inv.Outcome != OutcomeRinging || !o.rec.rang(userID) {
				return nil
			}
			if o.ringDevice(inv, deviceID) {
				setDeviceIfMissing(inv, deviceID, OutcomeRinging)
			}
			return nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func setDeviceIfMissing(inv *Invitee, device, outcome string) {
	for _, d := range inv.Devices {
		if d.DeviceID == device {
			return
		}
	}
	inv.Devices = append(inv.Devices, DeviceOutcome{DeviceID: device, Outcome: outcome})
}

// UnbindDevice deletes the APNs registrations of the user's device (it was
// kicked or logged out), so it rings for nobody's calls any more.
func (s *Service) UnbindDevice(ctx context.Context, sdkAppID int64, userID, deviceID string) error {
	if deviceID == "" {
		return badRequest(CodeBadField, "device ID is empty")
	}
	regs, err := s.st.Registrations(ctx, sdkAppID, userID)
	if err != nil {
		return fmt.Errorf("calls: registrations of %q: %w", userID, err)
	}
	var errs []error
	for _, r := range regs {
		if r.DeviceID != deviceID {
			continue
		}
		if err := s.st.DeleteRegistration(ctx, sdkAppID, r.Token); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("calls: delete registration: %w", err))
		}
	}
	return errors.Join(errs...)
}
