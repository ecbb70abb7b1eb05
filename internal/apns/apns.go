// Package apns is ringd's APNs provider client: HTTP/2 connection pools per
// (credential, environment), ES256 provider tokens, request headers, and the
// one table that classifies Apple's answers. It knows nothing of users or calls.
package apns

import (
	"crypto/ecdsa"
	"crypto/tls"
	"time"
)

// Apple's provider API hosts.
const (
	ProductionURL = "https://api.push.apple.com"
	SandboxURL    = "https://api.sandbox.push.apple.com"
)

// Environments, as ringd's store spells them.
const (
	Development = "development"
	Production  = "production"
)

// Push types ringd sends.
const (
	PushTypeAlert      = "alert"
	PushTypeBackground = "background"
	PushTypeVoIP       = "voip"
)

// Payload limits of the reference: 4096 bytes, 5120 for VoIP.
const (
	MaxPayload     = 4096
	MaxVoIPPayload = 5120
	MaxCollapseID  = 64
)

// Credential is one certificate ID's key material, opened from the store.
// Exactly one of Certificate (p12, TLS client auth) or SigningKey (p8,
// provider tokens) is set.
type Credential struct {
	ID          int64  // certificate ID; with Environment it keys a connection pool
	Environment string // Development or Production: selects the host
	Certificate *tls.Certificate
	SigningKey  *ecdsa.PrivateKey
	KeyID       string
	TeamID      string
}

// Notification is one request to APNs.
type Notification struct {
	DeviceToken string // lowercase hex
	ID          string // apns-id, canonical lowercase UUID; empty lets APNs pick
	Topic       string
	PushType    string
	// Expiration is sent as apns-expiration when non-nil; time.Unix(0, 0)
	// sends "0" (deliver now or never), which a ringing call needs.
	Expiration *time.Time
	Priority   int // 10, 5 or 1; 0 omits the header
	CollapseID string
	Payload    []byte
}

// Response is what APNs answered to one request.
type Response struct {
	Status    int
	Reason    string    // empty on 200
	APNsID    string    // apns-id echoed by APNs
	UniqueID  string    // apns-unique-id (development environment only)
	Timestamp time.Time // 410 only: when the token stopped being valid
	Host      string    // the host the request went to
	Latency   time.Duration
}

// Class is ringd's reading of an answer: what to do with the token and the push.
type Class string

const (
	ClassDelivered     Class = "delivered"     // 200: accepted by APNs
	ClassTokenDead     Class = "token_dead"    // 410: remove the registration if registered before Timestamp
	ClassConfiguration Class = "configuration" // our credential, topic or environment is wrong: keep the token, do not retry blindly
	ClassBadRequest    Class = "bad_request"   // the request itself is wrong (payload, headers): do not retry
	ClassTransient     Class = "transient"     // 429, 5xx, transport errors: retry with backoff until expiry
)
