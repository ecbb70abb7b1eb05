package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/outbox"
	"github.com/ringd/ringd/internal/store"
)

// Run sends the outbox until ctx is done, then waits for the sends in
// flight, each bounded by the lease, and returns nil.
func (s *Service) Run(ctx context.Context) error {
	var lastDepth time.Time
	return outbox.Run(ctx, outbox.Config[store.Delivery]{
		Workers: s.cfg.Workers,
		Batch:   s.cfg.ClaimBatch,
		// A backlog is claimed a quarter of the workers at a time, not a
		// few rows each time a send ends: every claim is a write.
		MinClaim:     min(s.cfg.Workers, s.cfg.ClaimBatch) / 4,
		PollInterval: s.cfg.PollInterval,
		Wake:         s.wake,
		Claim: func(ctx context.Context, limit int) ([]store.Delivery, error) {
			now := s.cfg.Now()
			ds, err := s.st.ClaimDeliveries(ctx, now, now.Add(s.cfg.Lease), limit)
			if err != nil {
				return nil, fmt.Errorf("push: claim: %w", err)
			}
			s.preload(ctx, ds)
			return ds, nil
		},
		Process: s.process,
		Direct:  s.direct,
		OnError: func(err error) { s.log.Warn("push: claim deliveries", slog.Any("err", err)) },
		AfterClaim: func(ctx context.Context) {
			if time.Since(lastDepth) >= s.cfg.PollInterval {
				s.sampleDepth(ctx)
				lastDepth = time.Now()
			}
		},
	})
}

// sampleDepth corrects the outbox gauge, which Submit reads for
// backpressure, with the store's count: one query per PollInterval, never
// one per request.
func (s *Service) sampleDepth(ctx context.Context) {
	s.counting.Lock()
	defer s.counting.Unlock()
	n, err := s.st.OutboxDepth(ctx)
	if err != nil {
		return
	}
	s.outbox.sample(n, time.Now())
	s.m.depth(n)
}

// process handles one claimed delivery. It does not stop when Run's ctx is
// cancelled, so a shutdown never leaves an answered request unrecorded; the
// lease bounds it instead, after which another claim may take the delivery.
//
// The work is bounded by the delivery's own lease, not a fresh one: the
// lease started when it was claimed or written, and once it ends another
// claim may take the delivery, so sending then could send it twice.
func (s *Service) process(runCtx context.Context, d *store.Delivery) {
	timeout := s.cfg.Lease
	if !d.LeaseUntil.IsZero() {
		left := d.LeaseUntil.Sub(s.cfg.Now())
		if left <= 0 {
			s.log.Warn("push: lease ended before the send; the next claim takes the delivery",
				slog.String("push_id", d.PushID), slog.Int64("delivery_id", d.ID))
			return
		}
		timeout = min(timeout, left)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), timeout)
	defer cancel()
	if err := s.deliver(ctx, d); err != nil {
		// The lease expires and the delivery is claimed again: at worst a
		// duplicate with the same apns-id, never a lost push.
		s.log.Error("push: delivery not recorded", slog.String("push_id", d.PushID), slog.Int64("delivery_id", d.ID), slog.Any("err", err))
	}
}

// sendResult is one request to APNs and ringd's reading of it.
type sendResult struct {
	at       time.Time
	cred     *apns.Credential
	cert     *store.Certificate
	n        *apns.Notification
	resp     *apns.Response // nil when the request got no answer
	err      error
	class    apns.Class
	latency  time.Duration
	pushType string
}

// reason is Apple's reason, the reason a request was refused before it
// was sent, or TransportError.
func (r *sendResult) reason() string {
	if r.resp != nil {
		return r.resp.Reason
	}
	var re *apns.RequestError
	if errors.As(r.err, &re) {
		return re.Reason
	}
	return ReasonTransport
}

func (s *Service) deliver(ctx context.Context, d *store.Delivery) error {
	p, err := s.plan(ctx, d)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	if reason, ok := s.stopped.get(d.PushID, now); ok {
		// Expired by Expire after this delivery was claimed: do not send.
		return s.finishStopped(ctx, d, p, nil, reason)
	}
	if !p.push.ExpiresAt.IsZero() && !now.Before(p.push.ExpiresAt) {
		d.State, d.Reason = stateExpired, ReasonExpired
		return s.finish(ctx, d, p, nil, string(stateExpired), diagnoseExpiredUnsent(p.push.ExpiresAt))
	}
	pushType := pushTypeOf(d, p.req)
	payload, err := p.payload(pushType)
	if err != nil {
		d.State, d.Reason = stateFailed, ReasonPayloadTooLarge
		return s.finish(ctx, d, p, nil, string(apns.ClassBadRequest), err.Error())
	}
	cred, cert, err := s.creds.Credential(ctx, d.CertificateID)
	if err != nil {
		return s.credentialFailed(ctx, d, p, err)
	}
	if !cert.ExpiresAt.IsZero() && !now.Before(cert.ExpiresAt) {
		return s.certificateExpired(ctx, d, p, cert, now)
	}
	r := s.send(ctx, p, cred, cert, s.notification(d, p, pushType, cert.BundleID, payload))
	if d.Attempts == 0 {
		// The first request of this delivery: the latency a call is judged by.
		s.m.firstRequest(sourceOf(p.req), r.at.Sub(p.push.CreatedAt))
	}
	return s.conclude(ctx, d, p, r, false)
}

// notification rebuilds the APNs request of a delivery from its push.
func (s *Service) notification(d *store.Delivery, p *pushPlan, pushType, bundleID string, payload []byte) *apns.Notification {
	return &apns.Notification{
		DeviceToken: d.Token,
		ID:          d.APNsID,
		Topic:       topicOf(bundleID, pushType),
		PushType:    pushType,
		Expiration:  expirationOf(p.req, p.push.ExpiresAt),
		Priority:    priorityOf(p.req, pushType),
		CollapseID:  p.req.CollapseID,
		Payload:     payload,
	}
}

// expirationOf is the apns-expiration of a request: "0" for now or never,
// the request's own time, or the end of the default TTL, so APNs never
// stores a push longer than ringd would retry it.
func expirationOf(req Request, expiresAt time.Time) *time.Time {
	var t time.Time
	switch {
	case req.Expiration == nil:
		t = expiresAt
	case *req.Expiration == 0:
		t = time.Unix(0, 0)
	default:
		t = time.Unix(*req.Expiration, 0)
	}
	return &t
}

// send makes one request, bounded so that two of them (the environment
// retry) fit in the lease.
func (s *Service) send(ctx context.Context, p *pushPlan, cred *apns.Credential, cert *store.Certificate, n *apns.Notification) *sendResult {
	// A request is never on the wire after its push expired (waiting for
	// a connection included): a call push must not ring once ringing has
	// stopped. The remaining time is taken on the pipeline's clock, which
	// tests may move.
	timeout := s.cfg.Lease / 3
	if !p.push.ExpiresAt.IsZero() {
		timeout = min(timeout, p.push.ExpiresAt.Sub(s.cfg.Now()))
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// at is taken right before the request is handed to the sender.
	r := &sendResult{at: s.cfg.Now(), cred: cred, cert: cert, n: n, pushType: n.PushType}
	start := time.Now()
	r.resp, r.err = s.sender.Send(sctx, cred, n)
	r.latency = time.Since(start)
	var re *apns.RequestError
	switch {
	case r.err == nil && r.resp != nil:
		r.class = apns.Classify(r.resp.Status, r.resp.Reason)
		if r.resp.Latency > 0 {
			r.latency = r.resp.Latency
		}
	case errors.As(r.err, &re):
		// Refused before sending: retrying the same request cannot help,
		// and no host judged the token, so no environment diagnosis.
		r.class = apns.ClassBadRequest
	default:
		r.resp = nil
		if r.err == nil {
			r.err = errors.New("no response")
		}
		r.class = apns.ClassTransient
	}
	s.m.attempt(string(r.class), cred.Environment, r.latency, r.resp != nil)
	return r
}

// conclude applies one answer to the delivery, the token and the
// certificate. switched is true for the retry through the other
// environment's certificate, which is never retried again.
func (s *Service) conclude(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult, switched bool) error {
	d.Attempts++
	switch {
	case r.class == apns.ClassTransient:
		return s.retryLater(ctx, d, p, r)
	case r.class == apns.ClassDelivered:
		return s.delivered(ctx, d, p, r, switched)
	case r.class == apns.ClassTokenDead:
		return s.tokenDead(ctx, d, p, r)
	case r.class == apns.ClassConfiguration && isEnvMismatch(r.reason()) && !switched:
		return s.envMismatch(ctx, d, p, r)
	case r.class == apns.ClassConfiguration:
		return s.misconfigured(ctx, d, p, r, switched)
	default:
		d.State, d.Reason = stateFailed, r.reason()
		return s.finish(ctx, d, p, s.attempt(d, r, diagnoseRejected(r)), string(r.class), "")
	}
}

func (s *Service) delivered(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult, switched bool) error {
	diag := "accepted by APNs (200): Apple delivers it when the device is reachable"
	if switched {
		if err := s.st.MoveRegistration(ctx, d.SDKAppID, d.Token, r.cert.ID, r.cert.Environment); err != nil {
			return fmt.Errorf("push: move registration: %w", err)
		}
		d.CertificateID, d.Environment = r.cert.ID, r.cert.Environment
		diag = fmt.Sprintf("delivered through certificate ID %d (%s); the registration now uses it", r.cert.ID, r.cert.Environment)
	}
	s.markCertificateSuccess(ctx, r)
	d.State, d.Reason = stateDelivered, ""
	// The registration's "last success" rides in the delivery's own commit.
	mark := &store.RegistrationMark{At: r.at}
	return s.finishMarked(ctx, d, p, s.attempt(d, r, diag), mark, string(apns.ClassDelivered), "")
}

// tokenDead applies Apple's 410 rule: remove the registration only if it
// was registered before the time APNs says the token became invalid, so a
// token the app registered again since is kept.
func (s *Service) tokenDead(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult) error {
	ts := r.resp.Timestamp
	if ts.IsZero() {
		ts = r.at // ExpiredToken may come without a timestamp
	}
	removed, err := s.st.RemoveRegistrationIfBefore(ctx, d.SDKAppID, d.Token, ts)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("push: remove registration: %w", err)
	}
	d.State, d.Reason = stateFailed, r.reason()
	return s.finish(ctx, d, p, s.attempt(d, r, diagnoseTokenDead(r.reason(), ts, removed)), string(apns.ClassTokenDead), "")
}

func (s *Service) misconfigured(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult, switched bool) error {
	s.markFailure(ctx, d, r)
	d.State, d.Reason = stateFailed, r.reason()
	diag := diagnoseConfiguration(r.reason(), r.pushType, r.cert, d.CertificateID, switched)
	return s.finish(ctx, d, p, s.attempt(d, r, diag), string(apns.ClassConfiguration), "")
}

// envMismatch explains a token or key of the other environment and, when
// the app has a matching certificate for the other environment, retries
// once through it at once: a Debug build's token registered with the
// production certificate ID is then delivered and corrected, not dropped.
func (s *Service) envMismatch(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult) error {
	s.markFailure(ctx, d, r)
	other, err := s.otherEnvironment(ctx, d.SDKAppID, r.cert, r.pushType)
	if err != nil {
		return err
	}
	a := s.attempt(d, r, diagnoseEnvMismatch(r.reason(), r.pushType, r.cert, other))
	if other == nil {
		d.State, d.Reason = stateFailed, r.reason()
		return s.finish(ctx, d, p, a, string(apns.ClassConfiguration), "")
	}
	if reason, ok := s.stoppedReason(ctx, d); ok {
		// The push was expired meanwhile: no second request.
		a.Diagnosis += fmt.Sprintf(" The push was stopped (%s) before a retry through certificate ID %d.", reason, other.ID)
		return s.finishStopped(ctx, d, p, a, reason)
	}
	cred, cert, err := s.creds.Credential(ctx, other.ID)
	if err != nil {
		d.State, d.Reason = stateFailed, r.reason()
		a.Diagnosis += fmt.Sprintf(" Certificate ID %d could not be opened for a retry: %v", other.ID, err)
		return s.finish(ctx, d, p, a, string(apns.ClassConfiguration), "")
	}
	// Record the first answer before the retry, keeping the delivery out of
	// other claims for a lease in case this process stops in between.
	d.State, d.Reason, d.UpdatedAt = statePending, r.reason(), s.cfg.Now()
	d.NextAttemptAt = d.UpdatedAt.Add(s.cfg.Lease)
	if err := s.commits.Do(ctx, store.Finish{Attempt: a, Delivery: d}); err != nil {
		return fmt.Errorf("push: record attempt: %w", err)
	}
	payload, err := p.payload(r.pushType)
	if err != nil {
		return err // built once already for the first attempt
	}
	r2 := s.send(ctx, p, cred, cert, s.notification(d, p, r.pushType, cert.BundleID, payload))
	return s.conclude(ctx, d, p, r2, true)
}

// otherEnvironment finds the app's certificate with the same bundle ID in
// the other environment that can carry this push type, newest first; nil
// when there is none.
func (s *Service) otherEnvironment(ctx context.Context, sdkAppID int64, cert *store.Certificate, pushType string) (*store.Certificate, error) {
	certs, err := s.st.Certificates(ctx, sdkAppID)
	if err != nil {
		return nil, fmt.Errorf("push: certificates of app %d: %w", sdkAppID, err)
	}
	var best *store.Certificate
	for i := range certs {
		c := &certs[i]
		if c.ID == cert.ID || c.BundleID != cert.BundleID || c.Environment == cert.Environment || !canPush(c, pushType) {
			continue
		}
		if best == nil || c.ID > best.ID {
			best = c
		}
	}
	return best, nil
}

// canPush tells whether a certificate can carry a push type: VoIP needs a
// VoIP Services certificate or a p8 key, which may push to every topic.
func canPush(c *store.Certificate, pushType string) bool {
	if pushType != apns.PushTypeVoIP {
		return true
	}
	if c.VoIP || c.Type == "p8" {
		return true
	}
	for _, t := range c.Topics {
		if t == c.BundleID+".voip" {
			return true
		}
	}
	return false
}

// retryLater schedules another attempt after a transient failure, unless
// the push expired, the attempts are used up, or the push was stopped by
// Expire while this request was in flight: a delivery that Expire marked
// expired is never put back in the outbox.
func (s *Service) retryLater(ctx context.Context, d *store.Delivery, p *pushPlan, r *sendResult) error {
	if reason, ok := s.stoppedReason(ctx, d); ok {
		return s.finishStopped(ctx, d, p, s.attempt(d, r, diagnoseStopped(r, reason)), reason)
	}
	now := s.cfg.Now()
	plan := s.cfg.planRetry(d.Attempts, now, p.push.ExpiresAt, s.retryCause(ctx, d, r))
	d.State, d.Reason, d.NextAttemptAt = plan.state, r.reason(), plan.next
	a := s.attempt(d, r, diagnoseTransient(r, plan, d.Attempts, s.cfg.MaxAttempts))
	result := string(apns.ClassTransient)
	if plan.state == stateExpired {
		result = string(stateExpired)
	}
	if err := s.finish(ctx, d, p, a, result, ""); err != nil {
		return err
	}
	switch {
	case plan.state != statePending:
	case plan.wait == 0:
		s.Wake() // due now: do not wait for the next poll
	case plan.wait < s.cfg.PollInterval:
		// Due before the next poll: wake the workers then, so a retry
		// keeps the backoff it drew instead of waiting for the poll.
		time.AfterFunc(plan.wait, s.Wake)
	}
	return nil
}

// retryCause reads a transient failure for planRetry. It runs before
// retryLater overwrites d.Reason, which still holds the previous attempt's.
func (s *Service) retryCause(ctx context.Context, d *store.Delivery, r *sendResult) retryCause {
	var c retryCause
	// The apns client already retried once with a fresh token; one more
	// at once covers a token that expired in between, but a second
	// ExpiredProviderToken in a row means a clock at odds with Apple's,
	// and retrying at once would dial and sign in a loop.
	c.immediate = r.reason() == "ExpiredProviderToken" && d.Reason != "ExpiredProviderToken"
	var be *apns.BackoffError
	if errors.As(r.err, &be) {
		c.notBefore = be.Wait
	}
	if r.resp != nil && d.Attempts >= s.cfg.MaxAttempts {
		c.budgetSpent = s.answeredFailures(ctx, d) >= s.cfg.MaxAttempts
	}
	return c
}

// answeredFailures counts the attempts of d that APNs answered, this one
// included (it is not stored yet). It reads the trace, which happens only
// once a delivery has made MaxAttempts attempts: a store error counts them
// all, so an unreadable trace ends the retries rather than prolonging them.
func (s *Service) answeredFailures(ctx context.Context, d *store.Delivery) int {
	as, err := s.st.Attempts(ctx, d.PushID)
	if err != nil {
		s.log.Warn("push: read attempts", slog.String("push_id", d.PushID), slog.Int64("delivery_id", d.ID), slog.Any("err", err))
		return d.Attempts
	}
	n := 1
	for _, a := range as {
		if a.DeliveryID == d.ID && a.Status != 0 {
			n++
		}
	}
	return n
}

// credentialFailed fails a delivery whose certificate cannot be opened;
// a store outage is retried instead.
func (s *Service) credentialFailed(ctx context.Context, d *store.Delivery, p *pushPlan, err error) error {
	if !errors.Is(err, ErrCredentialUnusable) && !errors.Is(err, store.ErrNotFound) {
		return err // the lease expires and the delivery is claimed again
	}
	d.Attempts++
	d.State, d.Reason = stateFailed, ReasonCredential
	a := &store.Attempt{
		DeliveryID: d.ID, PushID: d.PushID, At: s.cfg.Now(), Environment: d.Environment, CertificateID: d.CertificateID,
		APNsID: d.APNsID, Reason: ReasonCredential, Classification: string(apns.ClassConfiguration),
		Diagnosis: diagnoseCredential(d.CertificateID, err),
	}
	return s.finish(ctx, d, p, a, string(apns.ClassConfiguration), "")
}

// certificateExpired fails a delivery through an expired certificate at
// once, without a request: APNs would answer 403 BadCertificate, and every
// refused request counts against the provider. The certificate and the
// registration show the failure, and the token is kept for a new
// certificate of the same app.
func (s *Service) certificateExpired(ctx context.Context, d *store.Delivery, p *pushPlan, cert *store.Certificate, now time.Time) error {
	d.Attempts++
	d.State, d.Reason = stateFailed, ReasonCertificateExpired
	a := &store.Attempt{
		DeliveryID: d.ID, PushID: d.PushID, At: now, Environment: d.Environment, CertificateID: cert.ID,
		APNsID: d.APNsID, Reason: ReasonCertificateExpired, Classification: string(apns.ClassConfiguration),
		Diagnosis: diagnoseCertificateExpired(cert),
	}
	if err := s.st.MarkRegistrationResult(ctx, d.SDKAppID, d.Token, now, ReasonCertificateExpired); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("push: mark registration", slog.String("token", maskToken(d.Token)), slog.Any("err", err))
	}
	s.markCertificate(ctx, cert.ID, now, fmt.Sprintf("%s: the certificate expired at %s", ReasonCertificateExpired, cert.ExpiresAt.UTC().Format(time.RFC3339)))
	return s.finish(ctx, d, p, a, string(apns.ClassConfiguration), "")
}

// attempt is the record of one request for the trace.
func (s *Service) attempt(d *store.Delivery, r *sendResult, diagnosis string) *store.Attempt {
	a := &store.Attempt{
		DeliveryID:     d.ID,
		PushID:         d.PushID,
		At:             r.at,
		Environment:    r.cred.Environment,
		Host:           hostOf(r.cred.Environment),
		CertificateID:  r.cert.ID,
		APNsID:         r.n.ID,
		Reason:         r.reason(),
		Latency:        r.latency,
		Classification: string(r.class),
		Diagnosis:      diagnosis,
	}
	if r.resp != nil {
		a.Status, a.APNsUniqueID = r.resp.Status, r.resp.UniqueID
		if r.resp.Host != "" {
			a.Host = r.resp.Host
		}
		if r.resp.APNsID != "" {
			a.APNsID = r.resp.APNsID
		}
	}
	return a
}

// hostOf names the host of an environment, for attempts without an answer.
func hostOf(env string) string {
	if env == apns.Development {
		return strings.TrimPrefix(apns.SandboxURL, "https://")
	}
	return strings.TrimPrefix(apns.ProductionURL, "https://")
}

// finish records the attempt and the delivery's new state, then counts,
// logs and reports (OnFinal) a final state. result is the metrics label:
// the classification, or expired.
func (s *Service) finish(ctx context.Context, d *store.Delivery, p *pushPlan, a *store.Attempt, result, note string) error {
	return s.finishMarked(ctx, d, p, a, nil, result, note)
}

// finishMarked is finish that also records mark on the registration, in
// the same group commit.
func (s *Service) finishMarked(ctx context.Context, d *store.Delivery, p *pushPlan, a *store.Attempt, mark *store.RegistrationMark, result, note string) error {
	d.UpdatedAt = s.cfg.Now()
	if err := s.commits.Do(ctx, store.Finish{Attempt: a, Delivery: d, Mark: mark}); err != nil {
		return fmt.Errorf("push: record attempt: %w", err)
	}
	if d.State == statePending {
		return nil
	}
	s.outbox.left(1)
	if d.State == stateExpired {
		result = string(stateExpired)
	}
	s.m.final(result, d.Reason)
	s.logFinal(d, sourceOf(p.req), result, note)
	diagnosis := note
	if a != nil {
		diagnosis = a.Diagnosis
	}
	if diagnosis == "" {
		diagnosis = diagnoseNoAttempt(d, p.push.ExpiresAt)
	}
	s.reportFinal(ctx, d, sourceOf(p.req), result, diagnosis)
	return nil
}

// finishStopped records a delivery that Expire stopped while a worker held
// it: it stays expired with Expire's reason, with the attempt made if any.
// Expire already counted it, so it is neither counted nor reported again.
func (s *Service) finishStopped(ctx context.Context, d *store.Delivery, p *pushPlan, a *store.Attempt, reason string) error {
	d.State, d.Reason, d.UpdatedAt = stateExpired, reason, s.cfg.Now()
	if err := s.commits.Do(ctx, store.Finish{Attempt: a, Delivery: d}); err != nil {
		return fmt.Errorf("push: record attempt: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "push: delivery stopped in flight", slog.String("push_id", d.PushID),
		slog.Int64("delivery_id", d.ID), slog.String("source", sourceOf(p.req)), slog.String("reason", reason), slog.Int("attempts", d.Attempts))
	return nil
}

// markCertificateSuccess records a success on the certificate at most
// every certMarkInterval: one write per push for the certificate's "last
// success" would serialize a fan-out on one row.
func (s *Service) markCertificateSuccess(ctx context.Context, r *sendResult) {
	s.certMu.Lock()
	due := r.at.Sub(s.certMarked[r.cert.ID]) >= certMarkInterval
	if due {
		s.certMarked[r.cert.ID] = r.at
	}
	s.certMu.Unlock()
	if due {
		s.markCertificate(ctx, r.cert.ID, r.at, "")
	}
}

const certMarkInterval = 10 * time.Second

// markFailure records a configuration failure on the registration (the
// token is kept) and on the certificate, so the console shows both.
func (s *Service) markFailure(ctx context.Context, d *store.Delivery, r *sendResult) {
	reason := r.reason()
	if err := s.st.MarkRegistrationResult(ctx, d.SDKAppID, d.Token, r.at, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("push: mark registration", slog.String("token", maskToken(d.Token)), slog.Any("err", err))
	}
	text := reason
	if _, meaning, ok := apns.ReasonInfo(reason); ok {
		text += ": " + meaning
	}
	s.markCertificate(ctx, r.cert.ID, r.at, text)
	s.certMu.Lock()
	delete(s.certMarked, r.cert.ID) // the next success is recorded at once
	s.certMu.Unlock()
}

func (s *Service) markCertificate(ctx context.Context, id int64, at time.Time, errText string) {
	if err := s.st.MarkCertificateResult(ctx, id, at, errText); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("push: mark certificate", slog.Int64("certificate_id", id), slog.Any("err", err))
	}
}

// logFinal logs a delivery's outcome: the token masked, never the payload.
// A delivered push logs at debug: the trace and ringd_pushes_total already
// hold it, and a line per push at info cost about 8% of ringd's CPU per
// push in ringd bench push while burying the failures operators look for.
func (s *Service) logFinal(d *store.Delivery, source, result, note string) {
	level := slog.LevelWarn
	if d.State == stateDelivered {
		level = slog.LevelDebug
		if !s.log.Enabled(context.Background(), level) {
			return // the attributes below would be built for nothing
		}
	}
	attrs := []slog.Attr{
		slog.String("push_id", d.PushID), slog.Int64("delivery_id", d.ID), slog.Int64("sdk_app_id", d.SDKAppID),
		slog.String("token", maskToken(d.Token)), slog.String("kind", d.Kind), slog.Int64("certificate_id", d.CertificateID),
		slog.String("environment", d.Environment), slog.String("state", d.State), slog.String("result", result),
		slog.String("reason", d.Reason), slog.Int("attempts", d.Attempts), slog.String("source", source),
	}
	if note != "" {
		attrs = append(attrs, slog.String("note", note))
	}
	s.log.LogAttrs(context.Background(), level, "push: delivery "+d.State, attrs...)
}
