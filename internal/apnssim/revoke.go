package apnssim

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Errors of the revocation helpers; the control API answers them with 404.
var (
	ErrUnknownKey         = errors.New("unknown key ID")
	ErrUnknownCertificate = errors.New("unknown certificate ID")
)

// revokedSerials are the certificates revoked in the developer portal, by
// serial number in upper-case hex (CertIssue.CertificateID). Reads on the
// hot path take no lock.
type revokedSerials struct {
	m sync.Map // serial hex -> time.Time
}

func (r *revokedSerials) has(serial string) bool {
	if serial == "" {
		return false
	}
	_, ok := r.m.Load(serial)
	return ok
}

// RevokeKey revokes an issued p8 key, as a developer does in Apple's portal
// after a leak. From then on every provider token signed with it is
// refused with 403 InvalidProviderToken, on new connections and on those
// where a token of the key was already bound.
func (s *Simulator) RevokeKey(keyID string) error {
	k := s.keys.get(keyID)
	if k == nil {
		return fmt.Errorf("%w: %q", ErrUnknownKey, keyID)
	}
	if k.revokedAt.Load() == nil {
		at := s.now().UTC()
		k.revokedAt.Store(&at)
	}
	s.log.Info("apnssim: key revoked", "key_id", keyID)
	return s.persistKeys()
}

// RevokeCertificate revokes an issued push certificate by its ID (the
// serial number in hex, CertIssue.CertificateID). Connections presenting
// it get 403 BadCertificate for every push from then on, the connections
// already open included.
func (s *Simulator) RevokeCertificate(certificateID string) error {
	id := strings.ToUpper(strings.TrimSpace(certificateID))
	if !s.certs.revoke(id, s.now().UTC()) {
		return fmt.Errorf("%w: %q", ErrUnknownCertificate, certificateID)
	}
	s.revoked.m.Store(id, s.now().UTC())
	s.log.Info("apnssim: certificate revoked", "certificate_id", id)
	return s.persistKeys()
}

// revoke marks a ledger entry revoked; false when there is none.
func (l *certLedger) revoke(id string, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.list {
		if l.list[i].CertificateID == id {
			if l.list[i].RevokedAt == nil {
				l.list[i].RevokedAt = &at
			}
			return true
		}
	}
	return false
}

func (k *signingKey) revoked() bool { return k != nil && k.revokedAt.Load() != nil }
