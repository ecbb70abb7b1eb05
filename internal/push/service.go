package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/groupcommit"
	"github.com/ringd/ringd/internal/outbox"
	"github.com/ringd/ringd/internal/store"
)

// Defaults of Config.
const (
	DefaultWorkers          = 256
	DefaultClaimBatch       = 256
	DefaultLease            = 30 * time.Second
	DefaultPollInterval     = time.Second
	DefaultBackoffBase      = 200 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
	DefaultMaxAttempts      = 12
	DefaultTTL              = 24 * time.Hour
	DefaultNowOrNeverWindow = 30 * time.Second
	// DefaultMaxOutbox is in backpressure.go.
)

// Short names for the delivery states.
const (
	statePending   = store.DeliveryPending
	stateDelivered = store.DeliveryDelivered
	stateFailed    = store.DeliveryFailed
	stateExpired   = store.DeliveryExpired
)

// Config tunes the pipeline; zero fields take the defaults above.
type Config struct {
	Workers      int           // concurrent sends
	ClaimBatch   int           // deliveries leased per claim
	Lease        time.Duration // how long a claimed delivery is ours
	PollInterval time.Duration // outbox poll; Submit also wakes the workers
	BackoffBase  time.Duration
	BackoffMax   time.Duration
	MaxAttempts  int
	// DefaultTTL is the retry window and apns-expiration of a request
	// without Expiration.
	DefaultTTL time.Duration
	// NowOrNeverWindow is the retry window of a request with Expiration 0:
	// APNs does not store such a push, so ringd retries only briefly.
	NowOrNeverWindow time.Duration
	// MaxOutbox is the number of pending deliveries above which Submit
	// refuses pushes with CodeOutboxFull (calls' own pushes get 12.5 %
	// more), so an APNs outage fills the store up to a bound instead of
	// without one. Default DefaultMaxOutbox.
	MaxOutbox int
	Now       func() time.Time
	Logger    *slog.Logger
	Metrics   *Metrics
	// OnFinal, when set, is called once for each delivery that reaches
	// failed or expired (not for those stopped by Expire), from the worker
	// or from Submit. It must return quickly (enqueue, do not send): its
	// context has a short timeout.
	OnFinal func(ctx context.Context, ev FinalEvent)
}

func (c Config) withDefaults() Config {
	setDefault(&c.Workers, DefaultWorkers)
	setDefault(&c.ClaimBatch, DefaultClaimBatch)
	setDefault(&c.Lease, DefaultLease)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.MaxAttempts, DefaultMaxAttempts)
	setDefault(&c.DefaultTTL, DefaultTTL)
	setDefault(&c.NowOrNeverWindow, DefaultNowOrNeverWindow)
	setDefault(&c.MaxOutbox, DefaultMaxOutbox)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Sender sends one notification to APNs; *apns.Client implements it.
type Sender interface {
	Send(ctx context.Context, cred *apns.Credential, n *apns.Notification) (*apns.Response, error)
}

// Service accepts pushes into the outbox and runs the workers that send them.
type Service struct {
	cfg     Config
	st      store.Store
	sender  Sender
	creds   CredentialSource
	log     *slog.Logger
	m       *Metrics
	wake    chan struct{}
	plans   *planCache
	commits *groupcommit.Group[store.Finish]             // the workers' outcomes
	intake  *groupcommit.Group[store.PushWithDeliveries] // pushes submitted one at a time
	direct  *outbox.Direct[store.Delivery]               // deliveries handed to idle workers without a claim
	stopped *stoppedSet                                  // pushes this process expired, for the workers in flight
	outbox  outboxGauge                                  // pending deliveries, for backpressure
	// counting is held (read) from writing pushes until they are counted
	// in outbox, and (write) while the store's count replaces the gauge:
	// a count taken in between would include pushes counted again after.
	counting sync.RWMutex

	certMu     sync.Mutex
	certMarked map[int64]time.Time // last success recorded per certificate
}

// New returns a Service. Call Run to start sending.
func New(cfg Config, st store.Store, sender Sender, creds CredentialSource) *Service {
	cfg = cfg.withDefaults()
	return &Service{
		cfg:    cfg,
		st:     st,
		sender: sender,
		creds:  creds,
		log:    cfg.Logger,
		m:      cfg.Metrics,
		wake:   make(chan struct{}, 1),
		plans:  newPlanCache(planCacheSize),
		direct: &outbox.Direct[store.Delivery]{},
		commits: &groupcommit.Group[store.Finish]{
			Write: groupcommit.AllOrEach(st.FinishAttempts, oneItemsFault), Observe: cfg.Metrics.group("outcomes"),
		},
		intake: &groupcommit.Group[store.PushWithDeliveries]{
			Write: groupcommit.AllOrEach(st.CreatePushes, oneItemsFault), Observe: cfg.Metrics.group("pushes"),
		},
		stopped:    newStoppedSet(2 * cfg.Lease),
		certMarked: map[int64]time.Time{},
	}
}

// prepared is a validated request with what every user's push shares.
type prepared struct {
	req       Request
	reqJSON   []byte
	now       time.Time
	expiresAt time.Time
	// unsendable names push types whose payload is over Apple's limit:
	// only the alert fallback of a VoIP request can be (the primary type
	// is refused at once).
	unsendable map[string]bool
	// plan holds the payloads built to check their size, for the pushes
	// that go to workers at once (a claimed push decodes its stored copy).
	plan *requestPlan
}

// Submit accepts a push for one user: it writes the push and one delivery
// per device in one transaction, then wakes the workers. It returns the
// push ID, or an *Error for a request that can never be sent.
//
// When enough workers are idle, the deliveries are written leased and
// handed to them at once: a single push then skips the claim, a write
// transaction, and the wait for it.
func (s *Service) Submit(ctx context.Context, sdkAppID int64, userID string, req Request) (string, error) {
	st, err := s.Stage(ctx, sdkAppID, userID, nil, req)
	if err != nil {
		return "", err
	}
	// Pushes submitted one at a time, many at once, share their commits
	// the way the workers' outcomes do.
	s.Commit(ctx, [][]*Staged{{st}}, func() []bool {
		err = s.intake.Do(ctx, st.pd)
		return []bool{err == nil}
	})
	if err != nil {
		return "", fmt.Errorf("push: create push: %w", err)
	}
	return st.ID, nil
}

// SubmitBatch accepts the same push for up to MaxBatchUsers users and
// returns one push ID per user, in order. The request is validated and its
// payload built once, the registrations of all users are read in one go,
// and every user's push with its deliveries is written in one transaction:
// on a store error no push of the batch is accepted and no ID is returned.
// As with Submit, every push is on disk before the workers are woken.
func (s *Service) SubmitBatch(ctx context.Context, sdkAppID int64, userIDs []string, req Request) ([]string, error) {
	if len(userIDs) == 0 || len(userIDs) > MaxBatchUsers {
		return nil, errorf(CodeTooManyUsers, "a batch names 1 to %d users (got %d)", MaxBatchUsers, len(userIDs))
	}
	if req.Token != "" && len(userIDs) > 1 {
		return nil, errorf(CodeBadToken, "token selects one registration of one user: it cannot be used with several users")
	}
	for _, u := range userIDs {
		if err := checkUser(u); err != nil {
			return nil, err
		}
	}
	p, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	// Admitted as a whole: a batch may take the outbox over its limit by
	// its own size, never leave half of its users unpushed for it.
	if err := s.admit(sourceOf(req)); err != nil {
		return nil, err
	}
	regs, err := s.st.RegistrationsOfUsers(ctx, sdkAppID, userIDs)
	if err != nil {
		return nil, fmt.Errorf("push: registrations of %d users: %w", len(userIDs), err)
	}
	batch := make([]store.PushWithDeliveries, 0, len(userIDs))
	for _, u := range userIDs {
		pd, err := newPushFor(sdkAppID, u, regs[u], p)
		if err != nil {
			return nil, err
		}
		batch = append(batch, pd)
	}
	s.counting.RLock()
	if err := s.st.CreatePushes(ctx, batch); err != nil {
		s.counting.RUnlock()
		return nil, fmt.Errorf("push: create %d pushes: %w", len(batch), err)
	}
	ids := make([]string, len(batch))
	for i, pd := range batch {
		s.counted(pd)
		ids[i] = pd.Push.ID
	}
	s.counting.RUnlock()
	for _, pd := range batch {
		s.reportUnsendable(ctx, pd, p)
	}
	s.Wake()
	return ids, nil
}

// Wake tells the workers that deliveries are waiting. It never blocks.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func checkUser(userID string) error {
	if userID == "" {
		return errorf(CodeBadUser, "user ID is empty")
	}
	return nil
}

// prepare validates req and does the work shared by every user: the
// expiry, the request JSON and the payload size checks.
func (s *Service) prepare(req Request) (*prepared, error) {
	if err := ValidateRequest(req); err != nil {
		return nil, err
	}
	req.Token = strings.ToLower(req.Token)
	now := s.cfg.Now()
	expiresAt, err := s.expiresAt(req, now)
	if err != nil {
		return nil, err
	}
	p := &prepared{req: req, now: now, expiresAt: expiresAt, unsendable: map[string]bool{}, plan: newRequestPlan(req)}
	primary := alertPushType(req)
	if req.VoIP {
		primary = apns.PushTypeVoIP
	}
	if _, err := p.plan.payload(primary); err != nil {
		return nil, err
	}
	if req.VoIP {
		// Devices without a VoIP token fall back to an alert, whose limit is
		// lower; they fail alone rather than refusing the VoIP devices.
		if _, err := p.plan.payload(alertPushType(req)); err != nil {
			p.unsendable[alertPushType(req)] = true
		}
	}
	if p.reqJSON, err = json.Marshal(req); err != nil {
		return nil, fmt.Errorf("push: encode request: %w", err)
	}
	return p, nil
}

// expiresAt is the end of the retry window: the request's expiration, a
// short window for "now or never", or the default TTL.
func (s *Service) expiresAt(req Request, now time.Time) (time.Time, error) {
	switch {
	case req.Expiration == nil:
		return now.Add(s.cfg.DefaultTTL), nil
	case *req.Expiration == 0:
		return now.Add(s.cfg.NowOrNeverWindow), nil
	}
	at := time.Unix(*req.Expiration, 0)
	if !at.After(now) {
		return time.Time{}, errorf(CodeBadExpiration, "expiration %d is in the past (now is %d): use 0 for deliver now or never", *req.Expiration, now.Unix())
	}
	return at, nil
}

// newPushFor makes the user's push and one delivery per target among
// regs, the user's registrations. A user without devices still gets a
// push (no_devices), so the trace says why nothing was sent.
func newPushFor(sdkAppID int64, userID string, regs []store.Registration, p *prepared) (store.PushWithDeliveries, error) {
	if p.req.Token != "" {
		if regs = onlyToken(regs, p.req.Token); len(regs) == 0 {
			return store.PushWithDeliveries{}, errorf(CodeTokenNotRegistered, "token %s is not registered to user %q", maskToken(p.req.Token), userID)
		}
	}
	push := &store.Push{ID: newPushID(), SDKAppID: sdkAppID, UserID: userID, Request: p.reqJSON, CreatedAt: p.now, ExpiresAt: p.expiresAt}
	targets := selectTargets(regs, p.req)
	ds := make([]*store.Delivery, 0, len(targets))
	for _, t := range targets {
		ds = append(ds, newDelivery(push, t, p))
	}
	return store.PushWithDeliveries{Push: push, Deliveries: ds}, nil
}

// counted adds a written push's pending deliveries to the outbox gauge.
func (s *Service) counted(pd store.PushWithDeliveries) {
	for _, d := range pd.Deliveries {
		if d.State == statePending {
			s.outbox.added(1)
		}
	}
}

// reportUnsendable counts, logs and reports the deliveries of a written
// push that failed before any attempt. It runs after counting is released:
// OnFinal writes a webhook, and a sample of the outbox must not wait for it.
func (s *Service) reportUnsendable(ctx context.Context, pd store.PushWithDeliveries, p *prepared) {
	for _, d := range pd.Deliveries {
		if d.State == stateFailed {
			result := string(apns.ClassConfiguration) // NoAlertRegistration: the app registered no alert token
			if d.Reason == ReasonPayloadTooLarge {
				result = string(apns.ClassBadRequest)
			}
			s.m.final(result, d.Reason)
			s.logFinal(d, sourceOf(p.req), result, "")
			s.reportFinal(ctx, d, sourceOf(p.req), result, diagnoseNoAttempt(d, pd.Push.ExpiresAt))
		}
	}
}

func onlyToken(regs []store.Registration, token string) []store.Registration {
	for _, r := range regs {
		if r.Token == token {
			return []store.Registration{r}
		}
	}
	return nil
}

// newDelivery makes the outbox row for one target. Its apns-id is fixed
// here and reused on every attempt, so a duplicate shows up as one ID in
// Apple's delivery log.
func newDelivery(push *store.Push, t target, p *prepared) *store.Delivery {
	d := &store.Delivery{
		PushID:        push.ID,
		SDKAppID:      push.SDKAppID,
		UserID:        push.UserID,
		Token:         t.reg.Token,
		CertificateID: t.reg.CertificateID,
		Environment:   t.reg.Environment,
		Kind:          t.reg.Kind,
		DeviceID:      t.reg.DeviceID,
		APNsID:        uuid.NewString(),
		State:         statePending,
		NextAttemptAt: p.now,
		UpdatedAt:     p.now,
	}
	switch {
	case t.reason != "":
		d.State, d.Reason = stateFailed, t.reason
	case p.unsendable[t.pushType]:
		d.State, d.Reason = stateFailed, ReasonPayloadTooLarge
	}
	return d
}

// maskToken keeps a token recognisable in logs without exposing it.
func maskToken(t string) string {
	if len(t) <= 8 {
		return "…"
	}
	return t[:4] + "…" + t[len(t)-4:]
}

// newPushID is a UUIDv7: its leading timestamp makes the pushes written
// close together neighbours in every index keyed by push ID (the pushes'
// primary key, the deliveries' and attempts' push_id indexes), so a batch
// appends to a few pages instead of writing one random page per row and
// index. Version 4 is the fallback should the clock read fail.
func newPushID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// oneItemsFault tells whether a failed group write may be one item's (a
// delivery gone with its app, say), so that each item is written again
// alone; an unavailable store fails them all at once instead.
func oneItemsFault(err error) bool { return !errors.Is(err, store.ErrUnavailable) }
