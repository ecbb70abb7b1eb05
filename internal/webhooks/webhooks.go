// Package webhooks delivers ringd's events (calls, failed pushes) to an
// app's own server: signed HTTP POSTs with retries and an idempotency key,
// queued in the store so that no event is lost by a restart and call
// handling never waits for, or fails because of, the app's server.
//
// # Delivery
//
// For each event, ringd POSTs to the app's webhook URL (its settings'
// webhook_url, read when the request is made, so a changed URL applies to
// events already queued). The request carries:
//
//	POST <webhook_url>
//	Content-Type: application/json
//	User-Agent: ringd-webhooks/1
//	X-Ringd-Event: <event type, e.g. call.ended>
//	X-Ringd-Delivery: <event id>
//	X-Ringd-Timestamp: <unix seconds when this attempt was made>
//	X-Ringd-Signature: sha256=<lowercase hex HMAC-SHA256 of the body, keyed with the app's secret key>
//
// and the body is the JSON envelope, byte for byte the same on every
// attempt:
//
//	{
//	  "id": "8f14e45f-ceea-467f-a0e6-7b1d3f2c9a10",
//	  "type": "call.ended",
//	  "sdkappid": 1400000001,
//	  "created_at": "2025-01-02T15:04:05.123456789Z",
//	  "data": { ...event-specific fields... }
//	}
//
// id is random and equal to X-Ringd-Delivery: it is the idempotency key.
// An event may be delivered more than once (a retry after a timeout whose
// request did arrive, or a restart mid-request), so a receiver records the
// ids it has processed and ignores repeats. created_at (RFC 3339, UTC) is
// when the event happened; events are not guaranteed to arrive in order.
//
// # Verifying
//
// Compute HMAC-SHA256 over the raw request body (before any JSON parsing)
// with the app's secret key (the key current when the attempt is made: a
// retry after a key change is signed with the new key), hex-encode it, prefix "sha256=" and compare
// it in constant time with X-Ringd-Signature; Verify does exactly this.
// The signature covers the body only: to refuse replays, also check that
// created_at is recent and that the id is new. X-Ringd-Timestamp is
// informational.
//
// # Answers and retries
//
// A 2xx answer means delivered; the body is ignored. A 4xx answer other
// than 408 and 429 means the receiver refuses the event for good: it is
// not retried. Any other answer (3xx: redirects are not followed; 408,
// 429, 5xx), a timeout (10 s) or a connection error is retried with
// exponential backoff and full jitter, from 1 s up to 10 min between
// attempts (or the seconds of a Retry-After header, when longer), for 12
// attempts in all, after which the event is marked failed. Each attempt
// records its HTTP status and the first 200 bytes of the answer as the
// event's last error.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/outbox"
	"github.com/ringd/ringd/internal/store"
)

// Defaults of Config.
const (
	DefaultWorkers      = 4
	DefaultPollInterval = time.Second
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 10 * time.Minute
	DefaultMaxAttempts  = 12
	DefaultTimeout      = 10 * time.Second
	DefaultLease        = 60 * time.Second
)

// Header names of a webhook request.
const (
	HeaderEvent     = "X-Ringd-Event"
	HeaderDelivery  = "X-Ringd-Delivery"
	HeaderTimestamp = "X-Ringd-Timestamp"
	HeaderSignature = "X-Ringd-Signature"
)

// signaturePrefix names the algorithm in X-Ringd-Signature.
const signaturePrefix = "sha256="

// Limits.
const (
	// emitTimeout bounds what Emit does in the store (read the URL, insert
	// the event), so a stalled database cannot hold call handling longer.
	emitTimeout = 2 * time.Second
	// maxErrorBody is how much of an answer is kept as the last error.
	maxErrorBody = 200
	// maxDrain is how much of an answer is read to reuse the connection.
	maxDrain = 64 << 10
	// claimBatch bounds one claim.
	claimBatch = 64
)

// Config tunes the sender; zero fields take the defaults above.
type Config struct {
	Now    func() time.Time
	Logger *slog.Logger
	// Client sends the requests; the default has a 10 s timeout and does
	// not follow redirects.
	Client *http.Client
	// Workers is how many requests are in flight at most.
	Workers int
	// PollInterval is how often the outbox is read; Emit also wakes the
	// workers at once.
	PollInterval time.Duration
	BackoffBase  time.Duration
	BackoffMax   time.Duration
	// MaxAttempts counts every attempt, the first one included.
	MaxAttempts int
	// Lease is how long a claimed event is this process's; it must exceed
	// a request's timeout. After it, another claim may take the event.
	Lease time.Duration
	// Metrics, when set, gets ringd_webhooks_total{result}.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() Config {
	setDefault(&c.Workers, DefaultWorkers)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.MaxAttempts, DefaultMaxAttempts)
	setDefault(&c.Lease, DefaultLease)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// SecretSource gives an app's secret key in clear, to sign with.
type SecretSource interface {
	AppSecret(ctx context.Context, sdkAppID int64) (string, error)
}

// URLSource gives an app's webhook URL; "" means none is configured.
type URLSource interface {
	WebhookURL(ctx context.Context, sdkAppID int64) (string, error)
}

// Envelope is the JSON body of every webhook request.
type Envelope struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	SDKAppID  int64  `json:"sdkappid"`
	CreatedAt string `json:"created_at"` // RFC 3339 with nanoseconds, UTC
	Data      any    `json:"data"`
}

// Results counted in ringd_webhooks_total.
const (
	ResultQueued    = "queued"    // Emit stored an event
	ResultDropped   = "dropped"   // Emit could not store an event (logged)
	ResultDelivered = "delivered" // a 2xx answer
	ResultRetry     = "retry"     // an attempt failed and another is planned
	ResultFailed    = "failed"    // the event was given up
)

// Service queues events and runs the workers that send them.
type Service struct {
	cfg     Config
	st      store.Store
	secrets SecretSource
	urls    URLSource
	log     *slog.Logger
	wake    chan struct{}
	total   *prometheus.CounterVec // nil without Config.Metrics
}

// New returns a Service. Call Run to start sending; Emit works before.
func New(cfg Config, st store.Store, secrets SecretSource, urls URLSource) *Service {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, st: st, secrets: secrets, urls: urls, log: cfg.Logger, wake: make(chan struct{}, 1)}
	if cfg.Metrics != nil {
		s.total = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_webhooks_total",
			Help: "Webhook events by result: queued, dropped (not stored), delivered, retry (an attempt failed), failed (given up).",
		}, []string{"result"})
		cfg.Metrics.MustRegister(s.total)
	}
	return s
}

func (s *Service) count(result string) {
	if s.total != nil {
		s.total.WithLabelValues(result).Inc()
	}
}

// Emit queues an event for the app's webhook, when it has one. It never
// fails the caller: errors are logged (and counted as dropped), and the
// store work is bounded by a short timeout that the caller's cancellation
// does not cut short, so an event is recorded even if the request that
// caused it has gone. payload is marshalled at once, as the "data" field.
func (s *Service) Emit(ctx context.Context, sdkAppID int64, eventType string, payload any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), emitTimeout)
	defer cancel()
	u, err := s.urls.WebhookURL(ctx, sdkAppID)
	if err != nil {
		s.dropped(ctx, sdkAppID, eventType, "", "read webhook URL", err)
		return
	}
	if u == "" {
		return
	}
	now := s.cfg.Now()
	id := uuid.NewString()
	body, err := json.Marshal(Envelope{ID: id, Type: eventType, SDKAppID: sdkAppID, CreatedAt: now.UTC().Format(time.RFC3339Nano), Data: payload})
	if err != nil {
		s.dropped(ctx, sdkAppID, eventType, id, "encode event", err)
		return
	}
	w := &store.Webhook{SDKAppID: sdkAppID, EventID: id, EventType: eventType, Body: body, State: store.WebhookPending,
		NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	if err := s.st.EnqueueWebhook(ctx, w); err != nil {
		s.dropped(ctx, sdkAppID, eventType, id, "store event", err)
		return
	}
	s.count(ResultQueued)
	s.Wake()
}

func (s *Service) dropped(ctx context.Context, sdkAppID int64, eventType, id, what string, err error) {
	s.count(ResultDropped)
	s.log.LogAttrs(ctx, slog.LevelError, "webhooks: event dropped: "+what, slog.Int64("sdk_app_id", sdkAppID),
		slog.String("event_type", eventType), slog.String("event_id", id), slog.Any("err", err))
}

// Wake tells the workers that events are waiting. It never blocks.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends queued events until ctx is done, then waits for the requests
// in flight (each bounded by the client's timeout and the lease) and
// returns nil.
func (s *Service) Run(ctx context.Context) error {
	return outbox.Run(ctx, outbox.Config[store.Webhook]{
		Workers:      s.cfg.Workers,
		Batch:        claimBatch,
		PollInterval: s.cfg.PollInterval,
		Wake:         s.wake,
		Claim: func(ctx context.Context, limit int) ([]store.Webhook, error) {
			now := s.cfg.Now()
			ws, err := s.st.ClaimWebhooks(ctx, now, now.Add(s.cfg.Lease), limit)
			if err != nil {
				return nil, fmt.Errorf("webhooks: claim: %w", err)
			}
			return ws, nil
		},
		Process: s.process,
		OnError: func(err error) { s.log.Warn("webhooks: claim events", slog.Any("err", err)) },
	})
}

// process sends one claimed event and records the outcome. Like the push
// workers, it is not cut short by Run's cancellation (an answered request
// is always recorded); the lease bounds it instead.
func (s *Service) process(runCtx context.Context, w *store.Webhook) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), s.cfg.Lease)
	defer cancel()
	o := s.attempt(ctx, w)
	s.conclude(ctx, w, o)
}

// outcome is one attempt's result.
type outcome struct {
	delivered  bool
	permanent  bool          // do not retry
	retryAfter time.Duration // the receiver's Retry-After, if any
	err        string        // the last error to store
}

// attempt makes one request for w.
func (s *Service) attempt(ctx context.Context, w *store.Webhook) outcome {
	u, err := s.urls.WebhookURL(ctx, w.SDKAppID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return outcome{permanent: true, err: "the app no longer exists"}
	case err != nil:
		return outcome{err: "read webhook URL: " + err.Error()}
	case u == "":
		return outcome{permanent: true, err: "the app has no webhook URL any more"}
	}
	secret, err := s.secrets.AppSecret(ctx, w.SDKAppID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return outcome{permanent: true, err: "the app no longer exists"}
	case err != nil:
		return outcome{err: "read app secret: " + err.Error()}
	case secret == "":
		return outcome{permanent: true, err: "the app has no secret key to sign with"}
	}
	// The client's timeout applies too; this one also bounds a custom client.
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Lease/2)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(w.Body))
	if err != nil {
		return outcome{permanent: true, err: "bad webhook URL: " + errText(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ringd-webhooks/1")
	req.Header.Set(HeaderEvent, w.EventType)
	req.Header.Set(HeaderDelivery, w.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(s.cfg.Now().Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(secret, w.Body))
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return outcome{err: errText(err)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)) // lets the connection be reused
	o := outcome{err: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	if text := strings.TrimSpace(strings.ToValidUTF8(string(head), "\uFFFD")); text != "" {
		o.err += ": " + text
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return outcome{delivered: true}
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		o.permanent = true
	default:
		o.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	}
	return o
}

// errText is an error without the URL that *url.Error repeats: the URL
// may hold a token of the app's, and the last error is shown in the
// console.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout() {
		return "timeout: no answer in time (" + truncate(err.Error(), maxErrorBody) + ")"
	}
	return truncate(err.Error(), 2*maxErrorBody)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// parseRetryAfter reads a Retry-After in seconds; dates and garbage give 0.
func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, 24*3600)) * time.Second
}

// conclude stores an attempt's outcome: delivered, retried later, or failed.
func (s *Service) conclude(ctx context.Context, w *store.Webhook, o outcome) {
	w.Attempts++
	now := s.cfg.Now()
	w.UpdatedAt, w.LastError = now, o.err
	result := ResultRetry
	switch {
	case o.delivered:
		w.State, result = store.WebhookDelivered, ResultDelivered
	case o.permanent || w.Attempts >= s.cfg.MaxAttempts:
		w.State, result = store.WebhookFailed, ResultFailed
	default:
		wait := max(backoff(s.cfg.BackoffBase, s.cfg.BackoffMax, w.Attempts), min(o.retryAfter, s.cfg.BackoffMax))
		w.State, w.NextAttemptAt = store.WebhookPending, now.Add(wait)
	}
	if err := s.st.FinishWebhook(ctx, w); err != nil {
		// The lease expires and the event is sent again: a duplicate with
		// the same X-Ringd-Delivery, which receivers ignore.
		s.log.Error("webhooks: outcome not recorded", slog.Int64("webhook_id", w.ID), slog.String("event_id", w.EventID), slog.Any("err", err))
		return
	}
	s.count(result)
	level := slog.LevelDebug
	switch result {
	case ResultFailed:
		level = slog.LevelWarn
	case ResultRetry:
		level = slog.LevelInfo
	}
	s.log.LogAttrs(ctx, level, "webhooks: event "+result, slog.Int64("sdk_app_id", w.SDKAppID), slog.String("event_id", w.EventID),
		slog.String("event_type", w.EventType), slog.Int("attempts", w.Attempts), slog.String("last_error", w.LastError))
}

// backoff draws the wait after the given number of failed attempts with
// full jitter: uniform in [0, min(max, base*2^(attempts-1))].
func backoff(base, maxWait time.Duration, attempts int) time.Duration {
	ceiling := base
	for i := 1; i < attempts && ceiling < maxWait; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, maxWait)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// Sign returns the X-Ringd-Signature of body: "sha256=" and the lowercase
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify tells whether signature is body's X-Ringd-Signature under secret,
// comparing in constant time. Anything malformed (another prefix, bad hex,
// a wrong length) is false, never a panic.
func Verify(secret string, body []byte, signature string) bool {
	hexSum, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok || len(hexSum) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
