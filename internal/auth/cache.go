package auth

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultSigCacheSize is how many verified UserSigs a SigCache remembers:
// one per connected device of a large node, at about 200 bytes each.
const DefaultSigCacheSize = 100_000

// SigCache remembers UserSigs that verified, so that a device reconnecting
// with the same UserSig (after a network change, or all of them after a
// restart) costs a hash and a map lookup instead of inflating the sig
// (about 40 µs and 45 KiB of garbage) and computing its HMAC again.
//
// An entry is keyed by the SHA-256 of the exact UserSig text and holds the
// SHA-256 of the secret key it verified with: it answers only for that
// key, so a rotated secret misses and the sig is checked afresh against
// whatever keys the caller tries. The expiry is checked on every use, and
// an expired entry is dropped. Only verified sigs get in, so forged ones
// cannot crowd out real ones. At most size entries are kept; a new one
// replaces an arbitrary old one.
//
// A SigCache is safe for concurrent use.
type SigCache struct {
	size int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*sigEntry

	// inflaters recycles zlib readers for the sigs that miss: each new one
	// allocates a 32 KiB window, which a reconnect storm would otherwise
	// turn into garbage by the gigabyte.
	inflaters sync.Pool
}

type sigEntry struct {
	u   UserSig // what ParseUserSig returned
	key [sha256.Size]byte
}

// NewSigCache returns a cache of at most size verified UserSigs (size <= 0:
// DefaultSigCacheSize).
func NewSigCache(size int) *SigCache {
	if size <= 0 {
		size = DefaultSigCacheSize
	}
	return &SigCache{size: size, entries: map[[sha256.Size]byte]*sigEntry{}}
}

// Len is the number of remembered UserSigs.
func (c *SigCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Forget drops every remembered UserSig (of every app). The keys are part
// of each entry, so a rotation needs no call; Forget is for when a secret
// is compromised and must not be trusted even for sigs already seen.
func (c *SigCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// Ticket is a decoded UserSig tied to its text and to the cache that can
// vouch for it. Its Verify consults the cache.
type Ticket struct {
	*UserSig
	sum   [sha256.Size]byte // of the text
	cache *SigCache
	hit   bool // the UserSig came from a verified entry
}

// Parse decodes sig like ParseUserSig, from the cache when sig verified
// before. The Ticket's UserSig is the caller's own copy.
func (c *SigCache) Parse(sig string) (*Ticket, error) {
	sum := sha256.Sum256([]byte(sig))
	c.mu.Lock()
	e := c.entries[sum]
	var u UserSig
	if e != nil {
		u = e.u
	}
	c.mu.Unlock()
	if e != nil {
		u.UserBuf = bytes.Clone(u.UserBuf)
		u.Sig = bytes.Clone(u.Sig)
		return &Ticket{UserSig: &u, sum: sum, cache: c, hit: true}, nil
	}
	p, err := c.parse(sig)
	if err != nil {
		return nil, err
	}
	return &Ticket{UserSig: p, sum: sum, cache: c}, nil
}

// Verify is UserSig.Verify through the cache: a sig that verified with
// secretKey before skips the HMAC, but its expiry is checked against now
// every time. A success is remembered.
func (t *Ticket) Verify(secretKey string, now time.Time) error {
	if secretKey == "" {
		return ErrEmptyKey
	}
	key := sha256.Sum256([]byte(secretKey))
	if t.hit && t.cache.verified(t.sum, key) {
		if now.Unix() > t.expiresUnix() {
			t.cache.drop(t.sum)
			return fmt.Errorf("%w at %s", ErrExpired, t.ExpiresAt().UTC().Format(time.RFC3339))
		}
		return nil
	}
	if err := t.UserSig.Verify(secretKey, now); err != nil {
		return err
	}
	t.cache.add(t.sum, t.UserSig, key)
	return nil
}

func (c *SigCache) verified(sum, key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[sum]
	return e != nil && subtle.ConstantTimeCompare(e.key[:], key[:]) == 1
}

func (c *SigCache) drop(sum [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, sum)
}

func (c *SigCache) add(sum [sha256.Size]byte, u *UserSig, key [sha256.Size]byte) {
	e := &sigEntry{u: *u, key: key}
	e.u.UserBuf = bytes.Clone(u.UserBuf)
	e.u.Sig = bytes.Clone(u.Sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[sum]; !ok && len(c.entries) >= c.size {
		for old := range c.entries { // map order: an arbitrary victim, in O(1)
			delete(c.entries, old)
			break
		}
	}
	c.entries[sum] = e
}

// parse is ParseUserSig with a recycled zlib reader.
func (c *SigCache) parse(s string) (*UserSig, error) {
	raw, err := decodeOuter(s)
	if err != nil {
		return nil, err
	}
	br := bytes.NewReader(raw)
	var zr io.ReadCloser
	if v, ok := c.inflaters.Get().(io.ReadCloser); ok {
		if err := v.(zlib.Resetter).Reset(br, nil); err != nil {
			c.inflaters.Put(v)
			return nil, malformed("inflate: %w", err)
		}
		zr = v
	} else if zr, err = zlib.NewReader(br); err != nil {
		return nil, malformed("inflate: %w", err)
	}
	doc, err := readDoc(zr, br)
	_ = zr.Close()
	c.inflaters.Put(zr)
	if err != nil {
		return nil, err
	}
	return decodeDoc(doc)
}
