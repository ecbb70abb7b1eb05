package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// FinalEvent is a delivery that reached failed or expired, as Config.OnFinal
// receives it. The server sends it as the data of a push.failed webhook,
// so its JSON names are part of the webhook format (docs/webhooks.md).
type FinalEvent struct {
	SDKAppID       int64  `json:"sdkappid"`
	PushID         string `json:"push_id"`
	UserID         string `json:"user"`
	Token          string `json:"token"` // in clear: the app server owns it; mask it in logs
	DeviceID       string `json:"device_id"`
	State          string `json:"state"`          // store.DeliveryFailed or store.DeliveryExpired
	Reason         string `json:"reason"`         // Apple's reason, or one of ringd's Reason* constants
	Classification string `json:"classification"` // token_dead, configuration, bad_request, transient (gave up) or expired
	Diagnosis      string `json:"diagnosis"`
	CertificateID  int64  `json:"certificate_id"`
	Source         string `json:"source"` // SourceAPI or SourceCall
}

// onFinalTimeout bounds Config.OnFinal, which is expected to enqueue and
// return: a slow hook must not hold a worker.
const onFinalTimeout = 5 * time.Second

// DefaultExpireReason is the reason Expire records when given none.
const DefaultExpireReason = "Stopped"

// reportFinal hands a failed or expired delivery to Config.OnFinal.
func (s *Service) reportFinal(ctx context.Context, d *store.Delivery, source, classification, diagnosis string) {
	if s.cfg.OnFinal == nil || (d.State != stateFailed && d.State != stateExpired) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, onFinalTimeout)
	defer cancel()
	s.cfg.OnFinal(ctx, FinalEvent{
		SDKAppID: d.SDKAppID, PushID: d.PushID, UserID: d.UserID, Token: d.Token, DeviceID: d.DeviceID,
		State: d.State, Reason: d.Reason, Classification: classification, Diagnosis: diagnosis,
		CertificateID: d.CertificateID, Source: source,
	})
}

// Expire marks the pending deliveries of these pushes expired with reason
// (DefaultExpireReason when empty), so that a call that stopped ringing
// rings nothing later. Each expired delivery is counted in
// ringd_pushes_total{result="expired",reason}. It is not reported to
// OnFinal: the caller stopped the push on purpose, so it is no failure.
//
// A delivery a worker claimed before Expire may still be sent once (its
// request may already be on the wire), but it is never retried: a worker
// checks this process's expired pushes before sending, and the stored state
// before scheduling a retry.
func (s *Service) Expire(ctx context.Context, pushIDs []string, reason string) error {
	if len(pushIDs) == 0 {
		return nil
	}
	if reason == "" {
		reason = DefaultExpireReason
	}
	now := s.cfg.Now()
	// Remember first: a worker that claimed a delivery in the meantime must
	// see the push as stopped even before the store is updated, and this
	// process sends nothing more for it even if the update below fails.
	// (A worker that records such a delivery expired before the update
	// leaves it out of the update's count: a rare undercount by one.)
	s.stopped.add(pushIDs, reason, now)
	n, err := s.st.ExpirePushes(ctx, pushIDs, reason, now)
	if err != nil {
		return fmt.Errorf("push: expire %d pushes: %w", len(pushIDs), err)
	}
	s.m.finalN(string(stateExpired), reason, n)
	s.outbox.left(n)
	if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, "push: deliveries expired", slog.Int("deliveries", n),
			slog.Int("pushes", len(pushIDs)), slog.String("reason", reason))
	}
	return nil
}

// stoppedReason tells whether the delivery's push was stopped by Expire:
// in this process (memory), or in any (the delivery's stored state). A
// store error counts as not stopped: the retry goes ahead, as before Expire
// existed, and the error is logged.
func (s *Service) stoppedReason(ctx context.Context, d *store.Delivery) (string, bool) {
	if reason, ok := s.stopped.get(d.PushID, s.cfg.Now()); ok {
		return reason, true
	}
	ds, err := s.st.Deliveries(ctx, d.PushID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("push: re-check delivery state", slog.String("push_id", d.PushID), slog.Int64("delivery_id", d.ID), slog.Any("err", err))
		}
		return "", false
	}
	for _, x := range ds {
		if x.ID == d.ID && x.State == stateExpired {
			return x.Reason, true
		}
	}
	return "", false
}

// stoppedSet remembers the pushes this process expired for as long as a
// delivery claimed before Expire may still be in a worker's hands (the
// lease, twice for safety). After that the stored state is enough: a
// delivery that is not pending is never claimed again.
type stoppedSet struct {
	keep time.Duration

	mu        sync.Mutex
	byID      map[string]stoppedPush
	lastSweep time.Time
}

type stoppedPush struct {
	reason string
	at     time.Time
}

func newStoppedSet(keep time.Duration) *stoppedSet {
	return &stoppedSet{keep: keep, byID: map[string]stoppedPush{}}
}

func (s *stoppedSet) add(ids []string, reason string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Sweep at most twice per keep period, so a burst of Expire calls costs
	// a map insert each, not a scan each.
	if now.Sub(s.lastSweep) >= s.keep/2 {
		for id, p := range s.byID {
			if now.Sub(p.at) > s.keep {
				delete(s.byID, id)
			}
		}
		s.lastSweep = now
	}
	for _, id := range ids {
		s.byID[id] = stoppedPush{reason: reason, at: now}
	}
}

func (s *stoppedSet) get(id string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byID[id]
	if !ok || now.Sub(p.at) > s.keep {
		return "", false
	}
	return p.reason, true
}
