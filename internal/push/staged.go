package push

import (
	"context"
	"fmt"

	"github.com/ringd/ringd/internal/outbox"
	"github.com/ringd/ringd/internal/store"
)

// Staged is a push made ready, not yet written, for a caller that writes
// it in a transaction of its own together with its own change: a call's
// ring push with the call's new state, so that the two are durable
// together and cost one commit. Commit then does what Submit does after
// its write.
type Staged struct {
	ID string // the push ID, known before the write

	pd      store.PushWithDeliveries
	p       *prepared
	pending []*store.Delivery
	// res holds idle workers for the pending deliveries, which are then
	// written leased and handed to them once written (nil: none were idle,
	// the workers are woken to claim them).
	res *outbox.Reservation[store.Delivery]
}

// Push is what the caller's transaction writes (store.CreatePushes' form).
func (st *Staged) Push() store.PushWithDeliveries { return st.pd }

// Stage readies a push for one user as Submit would accept it, to regs,
// the user's registrations when the caller has just read them (nil: they
// are read now). It writes nothing; hand it to Commit, or to Drop if the
// caller's change is given up before its write.
func (s *Service) Stage(ctx context.Context, sdkAppID int64, userID string, regs []store.Registration, req Request) (*Staged, error) {
	p, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	if err := checkUser(userID); err != nil {
		return nil, err
	}
	if err := s.admit(sourceOf(req)); err != nil {
		return nil, err
	}
	if regs == nil {
		if regs, err = s.st.Registrations(ctx, sdkAppID, userID); err != nil {
			return nil, fmt.Errorf("push: registrations of %q: %w", userID, err)
		}
	}
	return s.stage(sdkAppID, userID, regs, p)
}

func (s *Service) stage(sdkAppID int64, userID string, regs []store.Registration, p *prepared) (*Staged, error) {
	pd, err := newPushFor(sdkAppID, userID, regs, p)
	if err != nil {
		return nil, err
	}
	st := &Staged{ID: pd.Push.ID, pd: pd, p: p}
	for _, d := range pd.Deliveries {
		if d.State == statePending {
			st.pending = append(st.pending, d)
		}
	}
	if st.res = s.direct.Reserve(len(st.pending)); st.res != nil {
		lease := s.cfg.Now().Add(s.cfg.Lease)
		for _, d := range st.pending {
			d.LeaseUntil = lease
		}
	}
	return st, nil
}

// Commit runs write, the caller's transactions, which write the pushes of
// each group in groups with the caller's change or not at all, and report
// per group whether it was written. Written pushes are then counted and
// sent as Submit's are; the others are dropped.
func (s *Service) Commit(ctx context.Context, groups [][]*Staged, write func() []bool) {
	s.counting.RLock()
	written := write()
	for i, g := range groups {
		if written[i] {
			for _, st := range g {
				s.counted(st.pd)
			}
		}
	}
	s.counting.RUnlock()
	wake := false
	for i, g := range groups {
		if !written[i] {
			s.Drop(g)
			continue
		}
		for _, st := range g {
			if !s.sendWritten(ctx, st) {
				wake = true
			}
		}
	}
	if wake {
		s.Wake()
	}
}

// Drop gives back what staged pushes hold; none of them was written.
func (s *Service) Drop(staged []*Staged) {
	for _, st := range staged {
		if st.res != nil {
			st.res.Release()
			st.res = nil
		}
	}
}

// sendWritten reports a written push's deliveries that failed before any
// attempt and hands its pending ones to the workers it reserved. It
// returns false when pending deliveries were written without workers
// reserved for them: the workers must be woken to claim them.
func (s *Service) sendWritten(ctx context.Context, st *Staged) bool {
	s.reportUnsendable(ctx, st.pd, st.p)
	if st.res == nil {
		return len(st.pending) == 0
	}
	s.plans.add(&pushPlan{push: *st.pd.Push, requestPlan: st.p.plan})
	items := make([]store.Delivery, len(st.pending))
	for i, d := range st.pending {
		items[i] = *d
	}
	// false: the workers stopped meanwhile; the deliveries stay leased
	// until their lease ends, then any claim takes them.
	st.res.Dispatch(items)
	st.res = nil
	return true
}
