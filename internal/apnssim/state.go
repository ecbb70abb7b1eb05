package apnssim

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// State files in Config.StateDir.
const (
	caFileName      = "ca.json"
	keysFileName    = "keys.json"
	devicesFileName = "devices.json"
)

// stateFiles writes JSON files atomically (temp file, fsync, rename), one
// writer at a time. An empty dir keeps everything in memory.
type stateFiles struct {
	dir string
	mu  sync.Mutex
}

func newStateFiles(dir string) *stateFiles { return &stateFiles{dir: dir} }

func (f *stateFiles) enabled() bool { return f.dir != "" }

// read decodes name into v; ok is false when the file does not exist yet.
func (f *stateFiles) read(name string, v any) (bool, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", name, err)
	}
	return true, nil
}

func (f *stateFiles) write(name string, v any) error {
	if !f.enabled() {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeFileAtomic(f.dir, name, b)
}

func writeFileAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return nil
}

type keysFile struct {
	Keys         []keyRecord       `json:"keys"`
	BundleTeams  map[string]string `json:"bundle_teams,omitempty"`
	Certificates []certRecord      `json:"certificates,omitempty"`
}

// keyRecord keeps a key's public half only, as Apple does.
type keyRecord struct {
	KeyID       string     `json:"key_id"`
	TeamID      string     `json:"team_id"`
	Environment string     `json:"environment"`
	PublicKey   string     `json:"public_key"` // PKIX PEM
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

type devicesFile struct {
	Devices []deviceRecord `json:"devices"`
}

type deviceRecord struct {
	Token         string         `json:"token"`
	BundleID      string         `json:"bundle_id"`
	Environment   string         `json:"environment"`
	Kind          string         `json:"kind"`
	CreatedAt     time.Time      `json:"created_at"`
	UninstalledAt *time.Time     `json:"uninstalled_at,omitempty"`
	Inbox         []Notification `json:"inbox,omitempty"`
}

// load reads the state, creating the directory and the CA on first use.
func (s *Simulator) load() error {
	if !s.store.enabled() {
		ca, err := newAuthority(s.now())
		s.ca = ca
		return err
	}
	if err := os.MkdirAll(s.store.dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := s.loadCA(); err != nil {
		return err
	}
	if err := s.loadKeys(); err != nil {
		return err
	}
	return s.loadDevices()
}

func (s *Simulator) loadCA() error {
	var f caFile
	ok, err := s.store.read(caFileName, &f)
	if err != nil {
		return err
	}
	if ok {
		s.ca, err = authorityFromFile(f)
		return err
	}
	if s.ca, err = newAuthority(s.now()); err != nil {
		return err
	}
	if f, err = s.ca.file(); err != nil {
		return err
	}
	return s.store.write(caFileName, f)
}

func (s *Simulator) loadKeys() error {
	var f keysFile
	if _, err := s.store.read(keysFileName, &f); err != nil {
		return err
	}
	for _, r := range f.Keys {
		pub, err := parsePublicKey(r.PublicKey)
		if err != nil {
			return fmt.Errorf("key %s: %w", r.KeyID, err)
		}
		k := &signingKey{KeyID: r.KeyID, TeamID: r.TeamID, Environment: r.Environment,
			Public: pub, CreatedAt: r.CreatedAt}
		k.revokedAt.Store(r.RevokedAt)
		s.keys.add(k)
	}
	for b, team := range f.BundleTeams {
		if err := s.keys.claim(b, team); err != nil {
			return err
		}
	}
	s.certs.list = f.Certificates
	for _, c := range f.Certificates {
		if c.RevokedAt != nil {
			s.revoked.m.Store(c.CertificateID, *c.RevokedAt)
		}
	}
	return nil
}

func parsePublicKey(p string) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("public key is not ECDSA")
	}
	return pub, nil
}

func (s *Simulator) loadDevices() error {
	var f devicesFile
	if _, err := s.store.read(devicesFileName, &f); err != nil {
		return err
	}
	for _, r := range f.Devices {
		d := &device{token: r.Token, bundle: r.BundleID, env: r.Environment, kind: r.Kind, created: r.CreatedAt}
		if r.UninstalledAt != nil {
			d.uninstalled = *r.UninstalledAt
		}
		for _, n := range r.Inbox {
			d.inbox.push(n, s.cfg.InboxLimit)
		}
		s.devices.add(d)
	}
	return nil
}

func (s *Simulator) persistAll() error {
	return errors.Join(s.persistKeys(), s.persistDevices())
}

func (s *Simulator) persistKeys() error {
	if !s.store.enabled() {
		return nil
	}
	s.keys.mu.RLock()
	f := keysFile{BundleTeams: make(map[string]string, len(s.keys.bundleTeam))}
	for _, k := range s.keys.byID {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			s.keys.mu.RUnlock()
			return fmt.Errorf("encode key %s: %w", k.KeyID, err)
		}
		f.Keys = append(f.Keys, keyRecord{KeyID: k.KeyID, TeamID: k.TeamID, Environment: k.Environment,
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), CreatedAt: k.CreatedAt,
			RevokedAt: k.revokedAt.Load()})
	}
	for b, t := range s.keys.bundleTeam {
		f.BundleTeams[b] = t
	}
	s.keys.mu.RUnlock()
	f.Certificates = s.certs.snapshot()
	return s.store.write(keysFileName, f)
}

func (s *Simulator) persistDevices() error {
	if !s.store.enabled() {
		return nil
	}
	var f devicesFile
	for _, d := range s.devices.all() {
		f.Devices = append(f.Devices, d.record())
	}
	return s.store.write(devicesFileName, f)
}

func (d *device) record() deviceRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := deviceRecord{Token: d.token, BundleID: d.bundle, Environment: d.env, Kind: d.kind,
		CreatedAt: d.created, Inbox: d.inbox.list()}
	if !d.uninstalled.IsZero() {
		u := d.uninstalled
		r.UninstalledAt = &u
	}
	return r
}
