package apnssim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringd/ringd/internal/credentials"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Key types for issued certificates.
const (
	KeyTypeRSA   = "rsa"   // RSA 2048, what Keychain exports (default)
	KeyTypeECDSA = "ecdsa" // P-256, much faster to generate in tests
)

// ErrInvalid marks a bad argument to the Go helpers or the control API.
var ErrInvalid = errors.New("invalid request")

// KeyOptions describes a provider-token (p8) key to issue.
type KeyOptions struct {
	// Environment is EnvDevelopment or EnvProduction for a team-scoped key
	// restricted to one host (Apple, since 2025), or EnvBoth (default) for a
	// legacy key valid on both.
	Environment string `json:"environment,omitempty"`
	// TeamID is 10 characters [A-Z0-9]; "" issues a key for a new team.
	TeamID string `json:"team_id,omitempty"`
}

// KeyIssue is an issued p8 key. The simulator keeps only the public key,
// like Apple.
type KeyIssue struct {
	KeyID       string `json:"key_id"`
	TeamID      string `json:"team_id"`
	P8          string `json:"p8"` // PKCS#8 PEM of an EC P-256 private key
	Environment string `json:"environment"`
}

// CertOptions describes a push certificate (p12) to issue.
type CertOptions struct {
	BundleID string `json:"bundle_id"`
	// Environment: EnvDevelopment (only OID .3.1), EnvProduction (only .3.2)
	// or EnvBoth (default: .3.1 and .3.2, Apple's "Sandbox & Production").
	Environment string `json:"environment,omitempty"`
	VoIP        bool   `json:"voip,omitempty"`    // a "VoIP Services" certificate
	Expired     bool   `json:"expired,omitempty"` // already expired, for tests
	Legacy      bool   `json:"legacy,omitempty"`  // legacy (3DES/RC2) p12 encoding
	KeyType     string `json:"key_type,omitempty"`
	// TeamID, if set, records the bundle as this team's: token pushes to it
	// from other teams get 400 TopicDisallowed.
	TeamID string `json:"team_id,omitempty"`
}

// CertIssue is an issued certificate, as a password-protected p12.
type CertIssue struct {
	P12           []byte    `json:"p12"` // base64 in JSON
	Password      string    `json:"password"`
	CertificateID string    `json:"certificate_id"`
	BundleID      string    `json:"bundle_id"`
	Environment   string    `json:"environment"`
	VoIP          bool      `json:"voip"`
	Topics        []string  `json:"topics"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// signingKey is the public half of an issued p8 key.
type signingKey struct {
	KeyID       string
	TeamID      string
	Environment string
	Public      *ecdsa.PublicKey
	CreatedAt   time.Time
	// revokedAt is set once the key is revoked (RevokeKey); tokens signed
	// with it are refused from then on.
	revokedAt atomic.Pointer[time.Time]
}

// keyRing holds the issued keys and which team owns which bundle.
type keyRing struct {
	mu         sync.RWMutex
	byID       map[string]*signingKey
	bundleTeam map[string]string
}

func (k *keyRing) get(id string) *signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.byID[id]
}

func (k *keyRing) add(key *signingKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byID == nil {
		k.byID = make(map[string]*signingKey)
	}
	k.byID[key.KeyID] = key
}

// owner is the team a bundle was recorded for, or "".
func (k *keyRing) owner(bundle string) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.bundleTeam[bundle]
}

// claim records bundle as team's; the first claim wins, as an App ID
// belongs to one team.
func (k *keyRing) claim(bundle, team string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.bundleTeam == nil {
		k.bundleTeam = make(map[string]string)
	}
	if cur, ok := k.bundleTeam[bundle]; ok && cur != team {
		return fmt.Errorf("%w: bundle %q belongs to team %s", ErrInvalid, bundle, cur)
	}
	k.bundleTeam[bundle] = team
	return nil
}

// certRecord remembers an issued certificate (never its key).
type certRecord struct {
	CertificateID string     `json:"certificate_id"`
	BundleID      string     `json:"bundle_id"`
	Environment   string     `json:"environment"`
	VoIP          bool       `json:"voip"`
	NotAfter      time.Time  `json:"not_after"`
	IssuedAt      time.Time  `json:"issued_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
}

type certLedger struct {
	mu   sync.Mutex
	list []certRecord
}

func (l *certLedger) add(r certRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, r)
}

func (l *certLedger) snapshot() []certRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]certRecord(nil), l.list...)
}

// IssueKey issues a p8 key for a new team. env is "development",
// "production" or "both" ("" means both: a legacy team key).
func (s *Simulator) IssueKey(env string) (KeyIssue, error) {
	return s.IssueKeyWith(KeyOptions{Environment: env})
}

// IssueKeyWith issues a p8 key; a team may hold several.
func (s *Simulator) IssueKeyWith(opts KeyOptions) (KeyIssue, error) {
	opts, err := opts.normalize()
	if err != nil {
		return KeyIssue{}, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyIssue{}, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return KeyIssue{}, fmt.Errorf("encode key: %w", err)
	}
	key := &signingKey{KeyID: s.newKeyID(), TeamID: opts.TeamID, Environment: opts.Environment,
		Public: &priv.PublicKey, CreatedAt: s.now().UTC()}
	s.keys.add(key)
	if err := s.persistKeys(); err != nil {
		return KeyIssue{}, err
	}
	s.log.Info("apnssim: key issued", "key_id", key.KeyID, "team_id", key.TeamID, "environment", key.Environment)
	return KeyIssue{
		KeyID:       key.KeyID,
		TeamID:      key.TeamID,
		P8:          string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		Environment: key.Environment,
	}, nil
}

func (o KeyOptions) normalize() (KeyOptions, error) {
	switch o.Environment {
	case "":
		o.Environment = EnvBoth
	case EnvDevelopment, EnvProduction, EnvBoth:
	default:
		return o, fmt.Errorf("%w: environment must be development, production or both", ErrInvalid)
	}
	if o.TeamID == "" {
		o.TeamID = randomAppleID()
	} else if !isAppleID(o.TeamID) {
		return o, fmt.Errorf("%w: team_id must be 10 characters A-Z 0-9", ErrInvalid)
	}
	return o, nil
}

// newKeyID draws key IDs until one is unused (collisions are 36^-10 rare).
func (s *Simulator) newKeyID() string {
	for {
		id := randomAppleID()
		if s.keys.get(id) == nil {
			return id
		}
	}
}

// IssueCertificate issues a push certificate for bundleID as Apple's portal
// would (RSA 2048, valid one year), wrapped in a Modern p12.
func (s *Simulator) IssueCertificate(bundleID, env string, voip bool) (CertIssue, error) {
	return s.IssueCertificateWith(CertOptions{BundleID: bundleID, Environment: env, VoIP: voip})
}

// IssueCertificateWith issues a push certificate with every option.
func (s *Simulator) IssueCertificateWith(opts CertOptions) (CertIssue, error) {
	opts, err := opts.normalize()
	if err != nil {
		return CertIssue{}, err
	}
	if opts.TeamID != "" {
		if err := s.keys.claim(opts.BundleID, opts.TeamID); err != nil {
			return CertIssue{}, err
		}
	}
	key, err := generateCertKey(opts.KeyType)
	if err != nil {
		return CertIssue{}, err
	}
	tmpl, topics, err := s.certTemplate(opts)
	if err != nil {
		return CertIssue{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca.cert, key.Public(), s.ca.key)
	if err != nil {
		return CertIssue{}, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CertIssue{}, fmt.Errorf("parse certificate: %w", err)
	}
	return s.packCertificate(opts, key, cert, topics)
}

func (s *Simulator) packCertificate(opts CertOptions, key crypto.Signer, cert *x509.Certificate, topics []string) (CertIssue, error) {
	password := randomPassword()
	enc := pkcs12.Modern
	if opts.Legacy {
		enc = pkcs12.Legacy
	}
	p12, err := enc.Encode(key, cert, nil, password)
	if err != nil {
		return CertIssue{}, fmt.Errorf("encode p12: %w", err)
	}
	rec := certRecord{CertificateID: fmt.Sprintf("%X", cert.SerialNumber), BundleID: opts.BundleID,
		Environment: opts.Environment, VoIP: opts.VoIP, NotAfter: cert.NotAfter, IssuedAt: s.now().UTC()}
	s.certs.add(rec)
	if err := s.persistKeys(); err != nil {
		return CertIssue{}, err
	}
	s.log.Info("apnssim: certificate issued", "certificate_id", rec.CertificateID, "bundle_id", rec.BundleID,
		"environment", rec.Environment, "voip", rec.VoIP)
	return CertIssue{P12: p12, Password: password, CertificateID: rec.CertificateID, BundleID: opts.BundleID,
		Environment: opts.Environment, VoIP: opts.VoIP, Topics: topics, ExpiresAt: cert.NotAfter}, nil
}

func (o CertOptions) normalize() (CertOptions, error) {
	if err := validateBundleID(o.BundleID); err != nil {
		return o, err
	}
	switch o.Environment {
	case "":
		o.Environment = EnvBoth
	case EnvDevelopment, EnvProduction, EnvBoth:
	default:
		return o, fmt.Errorf("%w: environment must be development, production or both", ErrInvalid)
	}
	switch o.KeyType {
	case "":
		o.KeyType = KeyTypeRSA
	case KeyTypeRSA, KeyTypeECDSA:
	default:
		return o, fmt.Errorf("%w: key_type must be rsa or ecdsa", ErrInvalid)
	}
	if o.TeamID != "" && !isAppleID(o.TeamID) {
		return o, fmt.Errorf("%w: team_id must be 10 characters A-Z 0-9", ErrInvalid)
	}
	return o, nil
}

func generateCertKey(kind string) (crypto.Signer, error) {
	if kind == KeyTypeECDSA {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// asn1Null is the value Apple gives its environment extensions.
var asn1Null = []byte{0x05, 0x00}

// certTemplate lays out the certificate like Apple's: UID = bundle, CN by
// product, environment OIDs with NULL values, and the .3.6 topics list.
func (s *Simulator) certTemplate(o CertOptions) (*x509.Certificate, []string, error) {
	topics := map[string]string{o.BundleID: "app"}
	order := []string{o.BundleID}
	if o.VoIP {
		topics[o.BundleID+".voip"] = "voip"
		order = append(order, o.BundleID+".voip")
	}
	topicsExt, err := credentials.TopicsExtension(topics, order)
	if err != nil {
		return nil, nil, fmt.Errorf("topics extension: %w", err)
	}
	exts := []pkix.Extension{{Id: credentials.OIDTopics, Value: topicsExt}}
	if o.Environment != EnvProduction {
		exts = append(exts, pkix.Extension{Id: credentials.OIDDevelopment, Value: asn1Null})
	}
	if o.Environment != EnvDevelopment {
		exts = append(exts, pkix.Extension{Id: credentials.OIDProduction, Value: asn1Null})
	}
	notBefore, notAfter := s.now().Add(-time.Minute), s.now().AddDate(1, 0, 0)
	if o.Expired {
		notBefore, notAfter = s.now().AddDate(-1, 0, -1), s.now().Add(-24*time.Hour)
	}
	team := o.TeamID
	if team == "" {
		team = randomAppleID()
	}
	return &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         certCommonName(o),
			OrganizationalUnit: []string{team}, // Apple puts the team ID here
			Organization:       []string{"ringd simulator"},
			Country:            []string{"US"},
			ExtraNames:         []pkix.AttributeTypeAndValue{{Type: credentials.OIDUserID, Value: o.BundleID}},
		},
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: exts,
	}, order, nil
}

// certCommonName follows Apple's products: a production-only certificate
// carries the older "Apple Production IOS Push Services" name, since
// "Apple Push Services" names the universal (sandbox + production) one.
func certCommonName(o CertOptions) string {
	switch {
	case o.VoIP:
		return credentials.CNPrefixVoIP + o.BundleID
	case o.Environment == EnvDevelopment:
		return credentials.CNPrefixDevelopment + o.BundleID
	case o.Environment == EnvProduction:
		return credentials.CNPrefixProduction + o.BundleID
	default:
		return credentials.CNPrefixUniversal + o.BundleID
	}
}

const appleIDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomAppleID draws a 10-character key or team ID.
func randomAppleID() string {
	b := make([]byte, 10)
	for i := range b {
		b[i] = appleIDChars[randIntn(len(appleIDChars))]
	}
	return string(b)
}

func isAppleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// validateBundleID accepts reverse-DNS identifiers: letters, digits,
// hyphens and dots, no empty labels.
func validateBundleID(b string) error {
	if b == "" || len(b) > 155 {
		return fmt.Errorf("%w: bundle_id must be 1 to 155 characters", ErrInvalid)
	}
	prevDot := true
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '.':
			if prevDot {
				return fmt.Errorf("%w: bundle_id has an empty label", ErrInvalid)
			}
			prevDot = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return fmt.Errorf("%w: bundle_id may hold only letters, digits, '-' and '.'", ErrInvalid)
		}
		prevDot = false
	}
	if prevDot {
		return fmt.Errorf("%w: bundle_id ends with '.'", ErrInvalid)
	}
	return nil
}
