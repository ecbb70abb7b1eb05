package store

import (
	"context"
	"time"
)

// Call states.
const (
	CallRinging  = "ringing"
	CallAnswered = "answered"
	CallEnded    = "ended"
)

// Call is one call invitation and everything that happened to it. The
// call service owns its state; the store keeps it so that records, sync
// after a reconnect and restarts see the same thing.
type Call struct {
	ID         string
	SDKAppID   int64
	Caller     string
	GroupID    string
	Media      string // "audio" or "video"
	RoomID     string
	Data       string // the app's custom data, at most 4 KiB
	State      string // CallRinging, CallAnswered or CallEnded
	EndReason  string // set when ended
	CreatedAt  time.Time
	AnsweredAt time.Time // zero until the first accept
	EndedAt    time.Time // zero until ended
	Seq        int64     // the number of the call's last event
	PushIDs    []string  // every push sent for the call
	// Doc is the call service's full record (participants, devices,
	// options) as JSON; the columns above are what queries need.
	Doc          []byte
	Participants []CallParticipant
	UpdatedAt    time.Time
}

// CallParticipant is one user of a call, for queries by user.
type CallParticipant struct {
	UserID       string
	Role         string    // "caller" or "invitee"
	Outcome      string    // ringing, accepted, declined, busy, timeout, cancelled, left, …
	RingDeadline time.Time // invitees: when ringing times out
}

// CallFilter selects calls of an app; zero fields match everything.
type CallFilter struct {
	UserID string    // caller or invitee
	Since  time.Time // created at or after
	Until  time.Time // created before
	Limit  int       // newest first; <= 0 means 100
}

// Session records when a device of a user was last connected, so a device
// that reconnects can be told what happened while it was away.
type Session struct {
	SDKAppID       int64
	UserID         string
	DeviceID       string
	ConnectedAt    time.Time
	DisconnectedAt time.Time // zero while connected
}

// Webhook delivery states.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// Webhook is one event to POST to an app's webhook URL: the webhook outbox.
type Webhook struct {
	ID            int64
	SDKAppID      int64
	EventID       string // idempotency key sent with every attempt
	EventType     string
	Body          []byte
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// CallStore is what the call service, the gateway and the webhooks keep.
type CallStore interface {
	// PutCall inserts or replaces the call and its participants in one
	// transaction. A call's app, caller and creation time never change:
	// a write under the same ID with others fails with ErrConflict, as
	// does one older (by Seq) than the stored call.
	PutCall(ctx context.Context, c *Call) error
	// PutCalls writes calls of distinct IDs as PutCall does, in one
	// transaction: all of them, or none when one fails (with that call's
	// error). Changes of concurrent calls share one commit this way.
	PutCalls(ctx context.Context, calls []*Call) error
	// PutCallsWithPushes writes calls as PutCalls does and pushes as
	// CreatePushes does, all in one transaction: a call change and the
	// pushes it sends are durable together or not at all.
	PutCallsWithPushes(ctx context.Context, calls []*Call, pushes []PushWithDeliveries) error
	Call(ctx context.Context, sdkAppID int64, id string) (*Call, error)
	Calls(ctx context.Context, sdkAppID int64, f CallFilter) ([]Call, error)
	// ActiveCalls returns every call not ended, of every app (for restarts).
	ActiveCalls(ctx context.Context) ([]Call, error)
	// CallsOfInvitee returns the calls the user was invited to that were
	// created or ended at or after since, oldest first.
	CallsOfInvitee(ctx context.Context, sdkAppID int64, userID string, since time.Time) ([]Call, error)

	// PutSession upserts by (app, user, device).
	PutSession(ctx context.Context, s *Session) error
	// PutSessions upserts every session in one transaction, all or none;
	// of two for the same device the later in the slice wins. Devices
	// connecting and disconnecting at once (a reconnect storm) share a
	// commit this way.
	PutSessions(ctx context.Context, ss []*Session) error
	Session(ctx context.Context, sdkAppID int64, userID, deviceID string) (*Session, error)

	// AppSettings returns the app's settings JSON ("{}" when never set).
	AppSettings(ctx context.Context, sdkAppID int64) ([]byte, error)
	PutAppSettings(ctx context.Context, sdkAppID int64, settings []byte) error

	// EnqueueWebhook adds to the webhook outbox and sets w.ID.
	EnqueueWebhook(ctx context.Context, w *Webhook) error
	ClaimWebhooks(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Webhook, error)
	// FinishWebhook stores state, attempts, next attempt and last error,
	// clearing the lease.
	FinishWebhook(ctx context.Context, w *Webhook) error
	Webhooks(ctx context.Context, sdkAppID int64, limit int) ([]Webhook, error)
}
