// Package store holds ringd's domain records and the Store interface that
// the SQLite and PostgreSQL implementations share. Packages above it read
// and write only through this interface.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns (wrapped with %w) so callers can
// branch with errors.Is.
var (
	ErrNotFound     = errors.New("store: not found")
	ErrConflict     = errors.New("store: conflict")
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
	ErrUnavailable  = errors.New("store: database unavailable")
)

// Environments of an APNs credential or registration.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Kinds of a registration: which Apple registration produced the token.
const (
	KindAlert = "alert"
	KindVoIP  = "voip"
)

// Delivery states of one push to one device. Pending deliveries are the
// outbox; the other three are final.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryExpired   = "expired"
)

// App is one tenant: everything else belongs to exactly one app.
type App struct {
	SDKAppID     int64
	Name         string
	SecretSealed []byte // the secret key, sealed by the caller (credentials.Sealer)
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// PreviousSecretSealed is the secret key before the last rotation,
	// sealed like SecretSealed; UserSigs made with it stay valid until
	// PreviousSecretUntil. Nil and zero when there is none.
	PreviousSecretSealed []byte
	PreviousSecretUntil  time.Time
}

// Kinds of SealedSecret.
const (
	SealedAppSecret         = "app_secret"          // apps.secret_sealed
	SealedAppPreviousSecret = "app_previous_secret" // apps.previous_secret_sealed
	SealedCertificate       = "certificate"         // certificates.secret_sealed
)

// SealedSecret is one sealed value the store keeps, for re-encrypting
// everything under a new master key (ringd rotate-master-key).
type SealedSecret struct {
	Kind     string // SealedAppSecret, SealedAppPreviousSecret or SealedCertificate
	SDKAppID int64
	ID       int64 // the certificate ID; the SDKAppID for app secrets
	Sealed   []byte
}

// Certificate is one uploaded APNs credential in one environment. Its ID is
// the businessID that the iOS app sends with its device token.
type Certificate struct {
	ID           int64 // assigned by the store, starting at 10001
	SDKAppID     int64
	Type         string // "p12" or "p8"
	Environment  string // EnvDevelopment or EnvProduction
	BundleID     string
	Topics       []string
	VoIP         bool      // a VoIP Services certificate (p12) or a p8 used for VoIP topics
	ExpiresAt    time.Time // zero for p8 keys, which do not expire
	KeyID        string    // p8 only
	TeamID       string    // p8 only
	SecretSealed []byte    // sealed key material (p12 bytes and password, or p8 PEM)
	CreatedAt    time.Time

	LastSuccessAt time.Time // zero when never
	LastErrorAt   time.Time // zero when never
	LastError     string
}

// Registration binds one device token to one user of an app (the seed's setAPNS).
type Registration struct {
	SDKAppID      int64
	UserID        string
	Token         string // lowercase hex, any even length
	CertificateID int64
	Environment   string
	Kind          string // KindAlert or KindVoIP
	DeviceID      string // optional; tokens sharing it are one phone
	RegisteredAt  time.Time

	LastSuccessAt     time.Time
	LastFailureAt     time.Time
	LastFailureReason string
}

// DeviceKey names the phone a registration belongs to: its device ID, or
// the token itself when the app named no device.
func (r *Registration) DeviceKey() string {
	if r.DeviceID != "" {
		return "d:" + r.DeviceID
	}
	return "t:" + r.Token
}

// Push is one accepted push request for one user. Request holds the
// accepted options as JSON so a worker can rebuild the payload after a
// restart.
type Push struct {
	ID        string
	SDKAppID  int64
	UserID    string
	Request   []byte
	CreatedAt time.Time
	ExpiresAt time.Time // zero: no expiry
}

// PushWithDeliveries is one push and its deliveries, for CreatePushes.
type PushWithDeliveries struct {
	Push       *Push
	Deliveries []*Delivery
}

// Delivery is one push to one device token: the unit of the outbox.
type Delivery struct {
	ID            int64 // assigned by the store
	PushID        string
	SDKAppID      int64
	UserID        string
	Token         string
	CertificateID int64
	Environment   string
	Kind          string
	DeviceID      string
	APNsID        string // the apns-id sent on every attempt (canonical UUID)
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	Reason        string // last reason, for final states
	UpdatedAt     time.Time
}

// Finish is one outcome for FinishAttempts: the delivery's new state, the
// attempt made (nil when none) and, when Mark is set, the result to record
// on the delivery's registration.
type Finish struct {
	Attempt  *Attempt
	Delivery *Delivery
	Mark     *RegistrationMark
}

// RegistrationMark is a registration's latest result: a success when
// Reason is empty, else a failure with Apple's reason.
type RegistrationMark struct {
	At     time.Time
	Reason string
}

// Attempt is one request to APNs for one delivery, with what Apple answered
// and what ringd concluded.
type Attempt struct {
	ID             int64
	DeliveryID     int64
	PushID         string
	At             time.Time
	Environment    string
	Host           string
	CertificateID  int64
	APNsID         string
	APNsUniqueID   string
	Status         int // HTTP status; 0 for a transport error
	Reason         string
	Latency        time.Duration
	Classification string
	Diagnosis      string
}

// Store is what ringd keeps. Every method takes the caller's context first
// and returns errors wrapping the sentinel errors above.
type Store interface {
	Close() error
	Ping(ctx context.Context) error

	CreateApp(ctx context.Context, a *App) error // ErrConflict on a taken SDKAppID
	App(ctx context.Context, sdkAppID int64) (*App, error)
	Apps(ctx context.Context) ([]App, error)
	UpdateAppSecret(ctx context.Context, sdkAppID int64, sealed []byte, at time.Time) error
	// RotateAppSecret makes sealed the app's secret key and keeps the one
	// it replaces as the previous secret until previousUntil (a zero or
	// past time keeps none).
	RotateAppSecret(ctx context.Context, sdkAppID int64, sealed []byte, previousUntil, at time.Time) error
	// SealedSecrets lists every sealed secret: app secrets (current and
	// previous) and certificate material.
	SealedSecrets(ctx context.Context) ([]SealedSecret, error)
	// ResealSecrets replaces every sealed secret by what reseal returns,
	// in one transaction: when reseal fails, or a secret changed meanwhile
	// (ErrConflict), nothing is written. It returns how many it replaced.
	ResealSecrets(ctx context.Context, reseal func(SealedSecret) ([]byte, error)) (int, error)
	DeleteApp(ctx context.Context, sdkAppID int64) error // with everything of the app

	// CreateCertificates inserts all of certs in one transaction and sets their IDs.
	CreateCertificates(ctx context.Context, certs []*Certificate) error
	Certificate(ctx context.Context, id int64) (*Certificate, error)
	Certificates(ctx context.Context, sdkAppID int64) ([]Certificate, error)
	// DeleteCertificate removes the certificate and its registrations.
	DeleteCertificate(ctx context.Context, id int64) error
	CountRegistrationsByCertificate(ctx context.Context, id int64) (int, error)
	// MarkCertificateResult records a success (errText == "") or an error.
	MarkCertificateResult(ctx context.Context, id int64, at time.Time, errText string) error

	// PutRegistration upserts by (app, token): a token registered again under
	// another user moves to that user. When the user then has more than
	// maxDevices devices (see DeviceKey), the registrations of the devices
	// registered longest ago are deleted and returned.
	PutRegistration(ctx context.Context, r *Registration, maxDevices int) (evicted []Registration, err error)
	Registration(ctx context.Context, sdkAppID int64, token string) (*Registration, error)
	Registrations(ctx context.Context, sdkAppID int64, userID string) ([]Registration, error)
	// RegistrationsOfUsers returns the registrations of every user in
	// userIDs (any number; duplicates allowed), keyed by user ID, each
	// user's oldest first as Registrations lists them. Users without a
	// registration are absent from the map.
	RegistrationsOfUsers(ctx context.Context, sdkAppID int64, userIDs []string) (map[string][]Registration, error)
	DeleteRegistration(ctx context.Context, sdkAppID int64, token string) error
	// RemoveRegistrationIfBefore deletes the registration only if it was
	// registered before the given time (Apple's 410 timestamp rule).
	RemoveRegistrationIfBefore(ctx context.Context, sdkAppID int64, token string, before time.Time) (bool, error)
	// MarkRegistrationResult records a success (reason == "") or a failure.
	MarkRegistrationResult(ctx context.Context, sdkAppID int64, token string, at time.Time, reason string) error
	// MoveRegistration corrects a registration's certificate and environment.
	MoveRegistration(ctx context.Context, sdkAppID int64, token string, certificateID int64, env string) error

	// CreatePush writes the push and its deliveries in one transaction and
	// sets the deliveries' IDs.
	CreatePush(ctx context.Context, p *Push, ds []*Delivery) error
	// CreatePushes writes every push with its deliveries in one
	// transaction and sets the deliveries' IDs: all are written or, on
	// error, none (and every delivery ID is left 0).
	CreatePushes(ctx context.Context, ps []PushWithDeliveries) error
	Push(ctx context.Context, sdkAppID int64, id string) (*Push, error)
	// Pushes lists an app's pushes, newest first; userID "" means all users.
	Pushes(ctx context.Context, sdkAppID int64, userID string, limit int) ([]Push, error)
	Deliveries(ctx context.Context, pushID string) ([]Delivery, error)
	Attempts(ctx context.Context, pushID string) ([]Attempt, error)

	// ClaimDeliveries leases up to limit pending deliveries whose
	// NextAttemptAt has come and whose lease is free, setting LeaseUntil.
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error)
	// FinishAttempt records an attempt and the delivery's new state,
	// attempts, next attempt time and reason in one transaction; the lease
	// is cleared. A nil attempt records only the delivery update.
	FinishAttempt(ctx context.Context, a *Attempt, d *Delivery) error
	// FinishAttempts records several outcomes as FinishAttempt does, and
	// each Mark on its delivery's registration as MarkRegistrationResult
	// does (a registration deleted meanwhile is skipped), all in one
	// transaction: all are written or none. Concurrent workers share one
	// commit this way instead of paying one each. Unlike FinishAttempt it
	// does not set the attempts' IDs when it writes more than one.
	FinishAttempts(ctx context.Context, fs []Finish) error
	// PushesByID returns the pushes with these IDs (any number), keyed by
	// ID; unknown IDs are absent. Workers read the pushes of a whole claim
	// with it instead of one query per delivery.
	PushesByID(ctx context.Context, ids []string) (map[string]*Push, error)
	// OutboxDepth counts pending deliveries.
	OutboxDepth(ctx context.Context) (int, error)
	// ExpirePushes marks the pending deliveries of these pushes expired
	// with the given reason, so a call that stopped ringing rings nothing.
	// It returns how many deliveries it expired.
	ExpirePushes(ctx context.Context, pushIDs []string, reason string, at time.Time) (int, error)
	// ReleaseLeases frees every lease of pending deliveries and webhooks. Only
	// a process that knows it is the database's sole user may call it (SQLite
	// behind the data directory's lock): a request cut by a crash is then
	// retried at once instead of after its lease.
	ReleaseLeases(ctx context.Context) (int, error)

	CallStore
}
