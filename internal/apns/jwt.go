package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Provider token lifetimes. Apple: refresh "no more than once every 20
// minutes and no less than once every 60 minutes"; an iat older than one
// hour gets 403 ExpiredProviderToken, a change within 20 minutes on one
// connection gets 429 TooManyProviderTokenUpdates.
const (
	DefaultTokenRefresh = 50 * time.Minute // apns2 and Pushy use 50 min too
	MinTokenRefresh     = 20 * time.Minute
	MaxTokenRefresh     = 55 * time.Minute // margin below Apple's hour for clock skew
)

var errNotP256 = errors.New("apns: p8 signing key is not an ECDSA P-256 key")

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss string `json:"iss"`
	Iat int64  `json:"iat"`
}

// signJWT makes an ES256 provider token: header {"alg":"ES256","kid":keyID},
// claims {"iss":teamID,"iat":unix seconds}, signature r||s (32 bytes each,
// left-padded) as JWS requires, all base64url without padding.
func signJWT(key *ecdsa.PrivateKey, keyID, teamID string, iat time.Time) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errNotP256
	}
	h, err := json.Marshal(jwtHeader{Alg: "ES256", Kid: keyID})
	if err != nil {
		return "", fmt.Errorf("apns: jwt header: %w", err)
	}
	c, err := json.Marshal(jwtClaims{Iss: teamID, Iat: iat.Unix()})
	if err != nil {
		return "", fmt.Errorf("apns: jwt claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("apns: jwt sign: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signingInput + "." + enc.EncodeToString(sig[:]), nil
}

// providerToken is one signed JWT, ready to send.
type providerToken struct {
	bearer string // "bearer <jwt>": built once, sent as is on every request
	issued time.Time
}

// tokenSource holds one connection's provider token. Each connection has
// its own: Pushy shared one token across connections and met
// TooManyProviderTokenUpdates when a connection saw two tokens in quick
// succession (pushy#931, fixed by going back to one token per connection).
type tokenSource struct {
	key           *ecdsa.PrivateKey
	keyID, teamID string
	refresh       time.Duration
	now           func() time.Time
	onIssue       func()

	cur atomic.Pointer[providerToken]
	mu  sync.Mutex // serialises signing so that concurrent requests sign once
}

// token returns the cached token, signing a new one when there is none or
// the current one is refresh old. The fast path is one atomic load.
func (ts *tokenSource) token() (*providerToken, error) {
	now := ts.now()
	if t := ts.cur.Load(); t != nil && now.Sub(t.issued) < ts.refresh {
		return t, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.cur.Load(); t != nil && now.Sub(t.issued) < ts.refresh {
		return t, nil
	}
	jwt, err := signJWT(ts.key, ts.keyID, ts.teamID, now)
	if err != nil {
		return nil, err
	}
	t := &providerToken{bearer: "bearer " + jwt, issued: now}
	ts.cur.Store(t)
	if ts.onIssue != nil {
		ts.onIssue()
	}
	return t, nil
}

// rejectedAsExpired handles 403 ExpiredProviderToken for token t. It drops
// t so the next request signs a fresh one, unless t is younger than
// MinTokenRefresh: then our clock disagrees with Apple's, a new token on this
// connection would risk TooManyProviderTokenUpdates, and the caller should
// retire the connection instead (what Pushy always does). It reports whether
// the connection should be retired.
func (ts *tokenSource) rejectedAsExpired(t *providerToken) (retire bool) {
	if ts.now().Sub(t.issued) < MinTokenRefresh {
		return true
	}
	ts.cur.CompareAndSwap(t, nil)
	return false
}

// clampTokenRefresh keeps the refresh age inside Apple's window. Below 20
// minutes APNs answers 429 TooManyProviderTokenUpdates and the connection is
// unusable for a while, so a shorter setting is raised to 20 minutes, never
// honoured. Above 55 minutes a token risks reaching Apple's one-hour limit.
func clampTokenRefresh(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultTokenRefresh
	case d < MinTokenRefresh:
		return MinTokenRefresh
	case d > MaxTokenRefresh:
		return MaxTokenRefresh
	}
	return d
}
