package apnssim

import (
	"net/http"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/credentials"
)

// Provider-token timing, from Apple's token documentation.
const (
	tokenMaxAge         = time.Hour        // older iat: ExpiredProviderToken
	tokenMinRefresh     = 20 * time.Minute // faster changes: TooManyProviderTokenUpdates
	tokenMaxFutureSkew  = time.Hour        // an iat this far ahead is not a real token
	authSchemeBearer    = "bearer"
	authKindCertificate = "certificate"
)

// authResult says who is pushing: a certificate's topics, or a key's team.
type authResult struct {
	cert   bool
	info   credentials.CertInfo
	keyID  string
	teamID string
}

// tokenBinding is the provider token APNs bound to a connection at its
// first valid push, and when it last changed.
type tokenBinding struct {
	jwt       string
	key       *signingKey // to see a revocation on the fast path
	keyID     string
	teamID    string
	issuedAt  time.Time
	changedAt time.Time
}

// authenticate picks the connection's client certificate when it has one
// (any authorization header is then ignored), the provider token otherwise.
func (s *Simulator) authenticate(h http.Header, env string, cs *connState) (authResult, *rejection) {
	if cs.cert != nil {
		return s.certAuth(cs, env)
	}
	header := first(h, "Authorization")
	if header == "" {
		return authResult{}, reject(ReasonMissingProviderToken)
	}
	return s.tokenAuth(cs, env, header)
}

func (s *Simulator) certAuth(cs *connState, env string) (authResult, *rejection) {
	if cs.certErr != nil {
		return authResult{}, reject(ReasonBadCertificate)
	}
	now := s.now()
	if now.After(cs.cert.NotAfter) || now.Before(cs.cert.NotBefore) || s.revoked.has(cs.certSerial) {
		return authResult{}, reject(ReasonBadCertificate)
	}
	if env == EnvDevelopment && !cs.certInfo.Development || env == EnvProduction && !cs.certInfo.Production {
		return authResult{}, reject(ReasonBadCertificateEnvironment)
	}
	return authResult{cert: true, info: cs.certInfo}, nil
}

// tokenAuth verifies the JWT once per connection: while the client keeps
// sending the same token only its age is checked, so the signature check
// (the expensive part) runs about once an hour per connection, not per push.
func (s *Simulator) tokenAuth(cs *connState, env, header string) (authResult, *rejection) {
	scheme, raw, ok := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, authSchemeBearer) || raw == "" {
		return authResult{}, reject(ReasonInvalidProviderToken)
	}
	now := s.now()
	if b, ok := cs.boundToken(raw); ok {
		if b.key.revoked() {
			return authResult{}, reject(ReasonInvalidProviderToken)
		}
		if now.Sub(b.issuedAt) > tokenMaxAge {
			return authResult{}, reject(ReasonExpiredProviderToken)
		}
		return authResult{keyID: b.keyID, teamID: b.teamID}, nil
	}
	tok, key, rej := s.verifyToken(raw, now)
	if rej != nil {
		return authResult{}, rej
	}
	if key.Environment != EnvBoth && key.Environment != env {
		return authResult{}, reject(ReasonBadEnvironmentKeyIDInToken)
	}
	if rej := s.bindToken(cs, raw, tok, key, now); rej != nil {
		return authResult{}, rej
	}
	return authResult{keyID: key.KeyID, teamID: key.TeamID}, nil
}

// verifyToken checks shape, key, issuer, signature and age, in that order:
// the age of a token means nothing until its signature holds.
func (s *Simulator) verifyToken(raw string, now time.Time) (providerToken, *signingKey, *rejection) {
	tok, err := parseProviderToken(raw)
	if err != nil {
		s.log.Debug("apnssim: provider token refused", "err", err)
		return tok, nil, reject(ReasonInvalidProviderToken)
	}
	key := s.keys.get(tok.KeyID)
	if key == nil || key.TeamID != tok.Issuer || key.revoked() {
		s.log.Debug("apnssim: provider token refused", "key_id", tok.KeyID, "iss", tok.Issuer)
		return tok, nil, reject(ReasonInvalidProviderToken)
	}
	if err := tok.verify(key.Public); err != nil {
		s.log.Debug("apnssim: provider token refused", "key_id", tok.KeyID, "err", err)
		return tok, nil, reject(ReasonInvalidProviderToken)
	}
	iat := time.Unix(tok.IssuedAt, 0)
	if now.Sub(iat) > tokenMaxAge {
		return tok, nil, reject(ReasonExpiredProviderToken)
	}
	if iat.Sub(now) > tokenMaxFutureSkew {
		return tok, nil, reject(ReasonInvalidProviderToken)
	}
	return tok, key, nil
}

// boundToken returns the connection's binding if raw is its current token.
func (cs *connState) boundToken(raw string) (tokenBinding, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.token, cs.token.jwt == raw
}

// bindToken makes raw the connection's token. The first valid token binds
// its key to the connection; later tokens must come from the same key and
// at least 20 minutes after the previous change.
func (s *Simulator) bindToken(cs *connState, raw string, tok providerToken, key *signingKey, now time.Time) *rejection {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	b := &cs.token
	switch {
	case b.jwt == raw:
		return nil // another stream bound it meanwhile
	case b.keyID != "" && b.keyID != tok.KeyID:
		return reject(ReasonUnrelatedKeyIDInToken)
	case b.jwt != "" && now.Sub(b.changedAt) < tokenMinRefresh:
		return reject(ReasonTooManyProviderTokenUpdates)
	}
	changed := b.jwt != ""
	*b = tokenBinding{jwt: raw, key: key, keyID: tok.KeyID, teamID: tok.Issuer,
		issuedAt: time.Unix(tok.IssuedAt, 0), changedAt: now}
	if changed {
		cs.jwtChanges.Add(1)
		s.stats.jwtChanges.Add(1)
	}
	return nil
}
