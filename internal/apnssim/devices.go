package apnssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrUnknownDevice means no device was minted with that token.
var ErrUnknownDevice = errors.New("unknown device token")

// Token lengths. Apple says lengths vary; 32 bytes is today's.
const (
	DefaultTokenBytes = 32
	MinTokenBytes     = 8
	MaxTokenBytes     = 128
)

// DeviceOptions describes a device token to mint.
type DeviceOptions struct {
	BundleID    string `json:"bundle_id"`
	Environment string `json:"environment"` // development or production
	Kind        string `json:"kind"`        // alert or voip
	Length      int    `json:"length,omitempty"`
	// TeamID, if set, records the bundle as this team's (see CertOptions).
	TeamID string `json:"team_id,omitempty"`
}

// DeviceInfo describes a minted device.
type DeviceInfo struct {
	Token         string     `json:"token"`
	BundleID      string     `json:"bundle_id"`
	Environment   string     `json:"environment"`
	Kind          string     `json:"kind"`
	CreatedAt     time.Time  `json:"created_at"`
	UninstalledAt *time.Time `json:"uninstalled_at,omitempty"`
	InboxCount    int        `json:"inbox_count"`
}

// Notification is one accepted push as the device received it.
type Notification struct {
	Headers NotificationHeaders `json:"headers"`
	// Payload is the body as sent. A body that is not JSON (APNs accepts it
	// at the HTTP layer) is kept as a JSON string, with PayloadInvalid set.
	Payload        json.RawMessage `json:"payload"`
	PayloadInvalid bool            `json:"payload_invalid,omitempty"`
	ReceivedAt     time.Time       `json:"received_at"`
	Environment    string          `json:"environment"`
	// UniqueID is the apns-unique-id answered (sandbox only).
	UniqueID string `json:"unique_id,omitempty"`
}

// NotificationHeaders are the request's apns-* headers as sent (absent
// ones are empty), except ID: the apns-id answered, echoed or generated.
type NotificationHeaders struct {
	PushType   string `json:"apns-push-type,omitempty"`
	Topic      string `json:"apns-topic,omitempty"`
	Expiration string `json:"apns-expiration,omitempty"`
	Priority   string `json:"apns-priority,omitempty"`
	ID         string `json:"apns-id,omitempty"`
	CollapseID string `json:"apns-collapse-id,omitempty"`
}

// device is one app install's registration. Identity fields never change;
// mu guards the rest.
type device struct {
	token, bundle, env, kind string
	created                  time.Time

	mu          sync.Mutex
	uninstalled time.Time
	inbox       ring
}

func (d *device) info() DeviceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	di := DeviceInfo{Token: d.token, BundleID: d.bundle, Environment: d.env, Kind: d.kind,
		CreatedAt: d.created, InboxCount: len(d.inbox.items)}
	if !d.uninstalled.IsZero() {
		u := d.uninstalled
		di.UninstalledAt = &u
	}
	return di
}

// uninstalledAt is zero while the app is installed.
func (d *device) uninstalledAt() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.uninstalled
}

func (d *device) deliver(n Notification, limit int) {
	d.mu.Lock()
	d.inbox.push(n, limit)
	d.mu.Unlock()
}

// ring keeps the last limit notifications without shifting on every push.
type ring struct {
	items []Notification
	next  int // oldest item once full
}

func (r *ring) push(n Notification, limit int) {
	if len(r.items) < limit {
		r.items = append(r.items, n)
		return
	}
	r.items[r.next] = n
	r.next = (r.next + 1) % len(r.items)
}

// list returns the notifications oldest first.
func (r *ring) list() []Notification {
	out := make([]Notification, 0, len(r.items))
	out = append(out, r.items[r.next:]...)
	return append(out, r.items[:r.next]...)
}

// deviceTable is read on every push and written only when minting, so a
// read-write lock keeps the hot path to a shared read lock.
type deviceTable struct {
	mu sync.RWMutex
	m  map[string]*device
}

func (t *deviceTable) get(token string) *device {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[token]
}

// add inserts d unless its token is taken.
func (t *deviceTable) add(d *device) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*device)
	}
	if _, ok := t.m[d.token]; ok {
		return false
	}
	t.m[d.token] = d
	return true
}

func (t *deviceTable) all() []*device {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*device, 0, len(t.m))
	for _, d := range t.m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *device) int { return a.created.Compare(b.created) })
	return out
}

// MintDevice mints a random 32-byte token (lowercase hex) bound to a
// bundle, an environment and a kind.
func (s *Simulator) MintDevice(bundleID, env, kind string) (string, error) {
	return s.MintDeviceWith(DeviceOptions{BundleID: bundleID, Environment: env, Kind: kind})
}

// MintDeviceWith mints a device token with every option.
func (s *Simulator) MintDeviceWith(opts DeviceOptions) (string, error) {
	opts, err := opts.normalize()
	if err != nil {
		return "", err
	}
	if opts.TeamID != "" {
		if err := s.keys.claim(opts.BundleID, opts.TeamID); err != nil {
			return "", err
		}
	}
	d := &device{bundle: opts.BundleID, env: opts.Environment, kind: opts.Kind, created: s.now().UTC()}
	for {
		d.token = randomToken(opts.Length)
		if s.devices.add(d) {
			break
		}
	}
	s.dirty.Store(true) // the flusher writes it within a second; Close always does
	s.log.Info("apnssim: device minted", "token", maskToken(d.token), "bundle_id", d.bundle,
		"environment", d.env, "kind", d.kind)
	return d.token, nil
}

func (o DeviceOptions) normalize() (DeviceOptions, error) {
	if err := validateBundleID(o.BundleID); err != nil {
		return o, err
	}
	if o.Environment != EnvDevelopment && o.Environment != EnvProduction {
		return o, fmt.Errorf("%w: environment must be development or production", ErrInvalid)
	}
	if o.Kind != KindAlert && o.Kind != KindVoIP {
		return o, fmt.Errorf("%w: kind must be alert or voip", ErrInvalid)
	}
	if o.Length == 0 {
		o.Length = DefaultTokenBytes
	}
	if o.Length < MinTokenBytes || o.Length > MaxTokenBytes {
		return o, fmt.Errorf("%w: length must be %d to %d bytes", ErrInvalid, MinTokenBytes, MaxTokenBytes)
	}
	if o.TeamID != "" && !isAppleID(o.TeamID) {
		return o, fmt.Errorf("%w: team_id must be 10 characters A-Z 0-9", ErrInvalid)
	}
	return o, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// Uninstall removes the app: from now on pushes to token get 410
// Unregistered with the uninstall time. Uninstalling twice keeps the first
// time, as the token stays dead.
func (s *Simulator) Uninstall(token string) error {
	d := s.devices.get(normalizeToken(token))
	if d == nil {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, maskToken(token))
	}
	d.mu.Lock()
	if d.uninstalled.IsZero() {
		d.uninstalled = s.now().UTC()
	}
	d.mu.Unlock()
	s.dirty.Store(true)
	s.log.Info("apnssim: app uninstalled", "token", maskToken(d.token))
	return nil
}

// Inbox returns the notifications token received, oldest first.
func (s *Simulator) Inbox(token string) ([]Notification, error) {
	d := s.devices.get(normalizeToken(token))
	if d == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDevice, maskToken(token))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inbox.list(), nil
}

// Devices lists the minted devices, oldest first.
func (s *Simulator) Devices() []DeviceInfo {
	all := s.devices.all()
	out := make([]DeviceInfo, 0, len(all))
	for _, d := range all {
		out = append(out, d.info())
	}
	return out
}

// normalizeToken lowercases hex: APNs decodes the token, so case does not
// matter on the wire.
func normalizeToken(t string) string {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c >= 'A' && c <= 'Z' {
			b := []byte(t)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return t
}

// maskToken keeps logs free of whole tokens: "a1b2…9f0e".
func maskToken(t string) string {
	if len(t) <= 8 {
		return "…"
	}
	return t[:4] + "…" + t[len(t)-4:]
}

// newUUID returns a random (version 4) UUID in canonical lowercase form,
// as APNs generates for apns-id and apns-unique-id.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never returns an error
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
