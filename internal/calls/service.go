package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/clock"
	"github.com/ringd/ringd/internal/groupcommit"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// Defaults of Config.
const (
	DefaultRequestTTL = 10 * time.Minute
	// opTimeout bounds the store and push work of one change, which runs
	// on its own once the change has begun (a client going away does not
	// leave a call half-changed).
	opTimeout = 10 * time.Second
)

// Config tunes the service; zero fields take defaults.
type Config struct {
	Clock   clock.Clock  // nil: clock.Real()
	Logger  *slog.Logger // nil: slog.Default()
	Metrics prometheus.Registerer
	// Settings returns an app's settings; nil reads them from the store
	// with settings.Load for every call. The Load of a settings.Cache
	// shared with whatever writes the settings spares that read.
	Settings func(ctx context.Context, sdkAppID int64) (settings.Settings, error)
	// RequestTTL is how long a request ID is remembered (idempotency).
	RequestTTL time.Duration
}

// Service is the call service. It owns the state and the timers of every
// active call.
//
// Events. Every change bumps the call's Seq, is stored (in a transaction it
// may share with changes of other calls: commit.go), then published (under
// the call's lock, so in Seq order) to the connected devices of the caller
// and of every invitee that rang. One change may be told differently to
// different devices under the same Seq:
//   - invite: ringing invitees get call.invited (TimeLeftMS, User = caller),
//     the caller's devices call.state;
//   - invite_more: the new ringing invitees get call.invited, everyone else
//     call.invitees_added;
//   - accept/reject: the acting device gets call.accepted/call.rejected, the
//     user's other devices call.answered_elsewhere/call.rejected_elsewhere
//     (all of them when the actor names no device).
//
// An invitee found busy at invite time gets one call.rejected (reason busy)
// and hears nothing more of the call. A change that ends the call is
// followed by call.ended (Reason = end reason) with its own Seq.
type Service struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	st      store.Store
	hub     *bus.Hub
	pusher  Pusher
	emitter Emitter
	m       *metrics
	commit  *groupcommit.Group[callWrite]  // writes call changes and their pushes, in shared transactions
	expire  *groupcommit.Group[pushExpiry] // expires ring pushes, in shared updates
	// sessions records devices connecting and disconnecting in shared
	// transactions: a reconnect storm is thousands of them at once.
	sessions *groupcommit.Group[*store.Session]

	ctx    context.Context // for timer-driven changes; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // timer functions running

	mu     sync.Mutex // guards the maps below and closed; never held while taking a call's lock
	calls  map[string]*active
	byUser map[userKey]map[string]*active // active calls each user is involved in (line busy)
	closed bool

	idem    *idempotency
	limiter *rateLimiter
	ringing atomic.Int64
}

type userKey struct {
	app  int64
	user string
}

// active is a call in memory. Its lock orders every change of the call.
type active struct {
	mu      sync.Mutex
	rec     *record
	ended   bool
	timers  map[string]clock.Timer // ring deadline timers by invitee
	users   map[string]bool        // users registered in Service.byUser
	ringing bool                   // counted in Service.ringing
}

// New returns a Service; call Start before serving requests. emitter may
// be nil.
func New(cfg Config, st store.Store, hub *bus.Hub, pusher Pusher, emitter Emitter) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.Settings == nil {
		cfg.Settings = func(ctx context.Context, sdkAppID int64) (settings.Settings, error) {
			return settings.Load(ctx, st, sdkAppID)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger, st: st, hub: hub, pusher: pusher, emitter: emitter,
		m: newMetrics(cfg.Metrics), commit: newCommitter(st, pusher), expire: newExpirer(pusher), sessions: newSessionWriter(st),
		ctx: ctx, cancel: cancel,
		calls: map[string]*active{}, byUser: map[userKey]map[string]*active{},
		idem:    newIdempotency(cfg.RequestTTL),
		limiter: newRateLimiter(),
	}
	return s
}

// Start loads the active calls from the store, rebuilds their state and
// arms their ring timers. A ring deadline already passed is applied before
// Start returns.
func (s *Service) Start(ctx context.Context) error {
	list, err := s.st.ActiveCalls(ctx)
	if err != nil {
		return fmt.Errorf("calls: load active calls: %w", err)
	}
	var loaded []*active
	for i := range list {
		rec, err := fromStore(&list[i])
		if err != nil {
			s.log.Error("calls: cannot restore call", "call_id", list[i].ID, "err", err)
			continue
		}
		if rec.State == StateEnded {
			continue
		}
		ac := &active{rec: rec, timers: map[string]clock.Timer{}, users: map[string]bool{}}
		s.mu.Lock()
		if _, dup := s.calls[rec.CallID]; dup {
			s.mu.Unlock()
			continue
		}
		s.calls[rec.CallID] = ac
		s.mu.Unlock()
		ac.mu.Lock()
		s.syncIndex(ac)
		s.syncRinging(ac)
		ac.mu.Unlock()
		loaded = append(loaded, ac)
	}
	now := s.clock.Now()
	type due struct {
		ac   *active
		user string
		at   time.Time
	}
	var overdue []due
	for _, ac := range loaded {
		ac.mu.Lock()
		for _, inv := range ac.rec.Invitees {
			if inv.Outcome != OutcomeRinging {
				continue
			}
			if !inv.RingDeadline.After(now) {
				overdue = append(overdue, due{ac, inv.User, inv.RingDeadline})
				continue
			}
			s.armTimer(ac, inv.User, inv.RingDeadline.Sub(now))
		}
		ac.mu.Unlock()
	}
	slices.SortStableFunc(overdue, func(a, b due) int { return a.at.Compare(b.at) })
	for _, d := range overdue {
		s.ringTimeout(ctx, d.ac, d.user)
	}
	s.log.Info("calls: started", "active_calls", len(loaded), "overdue_ring_deadlines", len(overdue))
	return nil
}

// Close stops the timers and waits for timer work in progress. Calls stay
// in the store; the next Start picks them up.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*active, 0, len(s.calls))
	for _, ac := range s.calls {
		all = append(all, ac)
	}
	s.mu.Unlock()
	for _, ac := range all {
		ac.mu.Lock()
		for u, t := range ac.timers {
			t.Stop()
			delete(ac.timers, u)
		}
		ac.mu.Unlock()
	}
	s.wg.Wait()
	s.cancel()
}

// Ringing is the number of calls ringing now.
func (s *Service) Ringing() int { return int(s.ringing.Load()) }

// armTimer sets the user's ring deadline timer; ac.mu is held.
func (s *Service) armTimer(ac *active, user string, d time.Duration) {
	if t := ac.timers[user]; t != nil {
		t.Stop()
	}
	ac.timers[user] = s.clock.AfterFunc(d, func() {
		if !s.enter() {
			return
		}
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
		defer cancel()
		s.ringTimeout(ctx, ac, user)
	})
}

// enter reports whether the service still runs timer work, counting it.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// syncTimers arms a timer for every ringing invitee without one and stops
// the others; ac.mu is held.
func (s *Service) syncTimers(ac *active, now time.Time) {
	ringing := map[string]bool{}
	if !ac.ended {
		for _, inv := range ac.rec.Invitees {
			if inv.Outcome == OutcomeRinging {
				ringing[inv.User] = true
				if ac.timers[inv.User] == nil {
					s.armTimer(ac, inv.User, inv.RingDeadline.Sub(now))
				}
			}
		}
	}
	for u, t := range ac.timers {
		if !ringing[u] {
			t.Stop()
			delete(ac.timers, u)
		}
	}
}

// syncIndex brings Service.byUser in line with the call; ac.mu is held.
func (s *Service) syncIndex(ac *active) {
	now := map[string]bool{}
	if !ac.ended {
		for _, u := range ac.rec.involved() {
			now[u] = true
		}
	}
	app := ac.rec.SDKAppID
	s.mu.Lock()
	defer s.mu.Unlock()
	for u := range ac.users {
		if !now[u] {
			k := userKey{app, u}
			delete(s.byUser[k], ac.rec.CallID)
			if len(s.byUser[k]) == 0 {
				delete(s.byUser, k)
			}
			delete(ac.users, u)
		}
	}
	for u := range now {
		if !ac.users[u] {
			s.indexLocked(ac, u)
		}
	}
	if ac.ended {
		delete(s.calls, ac.rec.CallID)
	}
}

// indexLocked registers the user as involved in the call; s.mu is held.
func (s *Service) indexLocked(ac *active, user string) {
	k := userKey{ac.rec.SDKAppID, user}
	m := s.byUser[k]
	if m == nil {
		m = map[string]*active{}
		s.byUser[k] = m
	}
	m[ac.rec.CallID] = ac
	ac.users[user] = true
}

// busyLocked tells whether the user is involved in an active call other
// than callID; s.mu is held.
func (s *Service) busyLocked(app int64, user, callID string) bool {
	for id := range s.byUser[userKey{app, user}] {
		if id != callID {
			return true
		}
	}
	return false
}

// syncRinging keeps the ringing count and gauge; ac.mu is held.
func (s *Service) syncRinging(ac *active) {
	r := !ac.ended && ac.rec.State == StateRinging
	if r == ac.ringing {
		return
	}
	ac.ringing = r
	if r {
		s.m.ringing.Set(float64(s.ringing.Add(1)))
	} else {
		s.m.ringing.Set(float64(s.ringing.Add(-1)))
	}
}

// activeCall returns the call in memory, or nil.
func (s *Service) activeCall(sdkAppID int64, callID string) *active {
	s.mu.Lock()
	defer s.mu.Unlock()
	ac := s.calls[callID]
	if ac == nil || ac.rec.SDKAppID != sdkAppID {
		return nil
	}
	return ac
}

// stored loads a call that is not in memory.
func (s *Service) stored(ctx context.Context, sdkAppID int64, callID string) (*record, error) {
	sc, err := s.st.Call(ctx, sdkAppID, callID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(callID)
	}
	if err != nil {
		return nil, fmt.Errorf("calls: load call %s: %w", callID, err)
	}
	if sc.SDKAppID != sdkAppID {
		return nil, errNotFound(callID)
	}
	return fromStore(sc)
}

// Get returns a call of the app.
func (s *Service) Get(ctx context.Context, sdkAppID int64, callID string) (*Call, error) {
	if ac := s.activeCall(sdkAppID, callID); ac != nil {
		ac.mu.Lock()
		c := ac.rec.view()
		ac.mu.Unlock()
		return c, nil
	}
	rec, err := s.stored(ctx, sdkAppID, callID)
	if err != nil {
		return nil, err
	}
	return rec.view(), nil
}

// GetForUser returns a call the user is the caller or an invitee of.
func (s *Service) GetForUser(ctx context.Context, sdkAppID int64, userID, callID string) (*Call, error) {
	c, err := s.Get(ctx, sdkAppID, callID)
	if err != nil {
		return nil, err
	}
	if c.Caller != userID && !slices.ContainsFunc(c.Invitees, func(inv Invitee) bool { return inv.User == userID }) {
		return nil, errNotParticipant(callID)
	}
	return c, nil
}

// List returns the app's calls, newest first.
func (s *Service) List(ctx context.Context, sdkAppID int64, f store.CallFilter) ([]Call, error) {
	list, err := s.st.Calls(ctx, sdkAppID, f)
	if err != nil {
		return nil, fmt.Errorf("calls: list: %w", err)
	}
	out := make([]Call, 0, len(list))
	for i := range list {
		rec, err := fromStore(&list[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *rec.view())
	}
	return out, nil
}

func (s *Service) settings(ctx context.Context, sdkAppID int64) (settings.Settings, error) {
	set, err := s.cfg.Settings(ctx, sdkAppID)
	if err != nil {
		return settings.Settings{}, fmt.Errorf("calls: settings of app %d: %w", sdkAppID, err)
	}
	return set, nil
}

// Errors.

func newError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(callID string) *Error {
	return newError(CodeCallNotFound, http.StatusNotFound, "no call %q", callID)
}

func errNotParticipant(callID string) *Error {
	return newError(CodeNotParticipant, http.StatusForbidden, "you are not a participant of call %q", callID)
}

func errEnded(r *record) *Error {
	return newError(CodeCallEnded, http.StatusConflict, "the call has ended (%s)", r.EndReason)
}

func badRequest(code, format string, args ...any) *Error {
	return newError(code, http.StatusBadRequest, format, args...)
}
