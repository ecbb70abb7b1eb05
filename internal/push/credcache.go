package push

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/store"
)

// CredentialSource gives the APNs credential of a certificate ID together
// with its store record (bundle ID, environment, VoIP).
type CredentialSource interface {
	Credential(ctx context.Context, certificateID int64) (*apns.Credential, *store.Certificate, error)
}

// ErrCredentialUnusable wraps failures that retrying will not fix: the
// certificate was deleted, or its sealed material does not open or parse.
// Deliveries through it fail at once with a configuration diagnosis.
var ErrCredentialUnusable = errors.New("push: credential unusable")

// credentialTTL bounds how long a cached credential outlives a deletion or
// replacement made on another node, which cannot call Forget here.
const credentialTTL = 5 * time.Minute

// CredentialCache opens certificates from the store and keeps the parsed
// credentials, because decrypting and parsing a .p12 per push would cost
// more than the push itself.
type CredentialCache struct {
	st     store.Store
	sealer *credentials.Sealer
	now    func() time.Time

	mu      sync.Mutex
	entries map[int64]credEntry
}

type credEntry struct {
	cred     *apns.Credential
	cert     *store.Certificate
	loadedAt time.Time
}

var _ CredentialSource = (*CredentialCache)(nil)

// NewCredentialCache returns a CredentialSource over st.
func NewCredentialCache(st store.Store, sealer *credentials.Sealer) *CredentialCache {
	return &CredentialCache{st: st, sealer: sealer, now: time.Now, entries: map[int64]credEntry{}}
}

// CertificateAAD is the additional data certificates are sealed with: it
// binds the sealed material to its app.
func CertificateAAD(sdkAppID int64) []byte {
	return []byte("apns-credential:" + strconv.FormatInt(sdkAppID, 10))
}

// Credential returns the cached credential or loads it.
func (c *CredentialCache) Credential(ctx context.Context, id int64) (*apns.Credential, *store.Certificate, error) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && c.now().Sub(e.loadedAt) < credentialTTL {
		return e.cred, e.cert, nil
	}
	cred, cert, err := c.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	c.entries[id] = credEntry{cred: cred, cert: cert, loadedAt: c.now()}
	c.mu.Unlock()
	return cred, cert, nil
}

// Forget drops a certificate from the cache, after it was deleted or replaced.
func (c *CredentialCache) Forget(id int64) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

func (c *CredentialCache) load(ctx context.Context, id int64) (*apns.Credential, *store.Certificate, error) {
	cert, err := c.st.Certificate(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: certificate ID %d does not exist (deleted?): %w", ErrCredentialUnusable, id, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("push: load certificate %d: %w", id, err)
	}
	m, err := credentials.OpenMaterial(c.sealer, cert.SecretSealed, CertificateAAD(cert.SDKAppID))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: certificate ID %d: %w", ErrCredentialUnusable, id, err)
	}
	cred, err := buildCredential(cert, m)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: certificate ID %d: %w", ErrCredentialUnusable, id, err)
	}
	cert.SecretSealed = nil // not needed past this point; keep it out of the cache
	return cred, cert, nil
}

func buildCredential(cert *store.Certificate, m credentials.Material) (*apns.Credential, error) {
	cred := &apns.Credential{ID: cert.ID, Environment: cert.Environment}
	if cert.Type == "p8" {
		key, err := m.SigningKey()
		if err != nil {
			return nil, err
		}
		cred.SigningKey = key
		cred.KeyID = firstNonEmpty(m.KeyID, cert.KeyID)
		cred.TeamID = firstNonEmpty(m.TeamID, cert.TeamID)
		return cred, nil
	}
	tc, err := m.TLSCertificate()
	if err != nil {
		return nil, err
	}
	cred.Certificate = tc
	return cred, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
