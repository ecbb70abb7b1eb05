package settings

import (
	"context"
	"sync"
	"time"
)

// DefaultCacheTTL bounds how long a Cache serves an app's settings without
// reading them again. Changes saved through the cache (or announced with
// Invalidate) are seen at once; the TTL only bounds how long a change made
// by another process (another node on the same PostgreSQL) goes unseen.
const DefaultCacheTTL = 5 * time.Second

// Cache keeps apps' settings in memory, so that the call path does not
// read and decode them for every call. Every writer of the settings must
// go through Save or call Invalidate after its own write.
type Cache struct {
	st  Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[int64]cacheEntry // apps whose settings were read successfully
	gen     uint64               // bumped by every Invalidate
}

type cacheEntry struct {
	set Settings
	at  time.Time // when read
}

// NewCache returns a cache over st; ttl <= 0 means DefaultCacheTTL and a
// nil now means time.Now.
func NewCache(st Store, ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{st: st, ttl: ttl, now: now, entries: map[int64]cacheEntry{}}
}

// Load returns the app's settings as Load does, from memory when they were
// read less than the TTL ago. Errors are not cached.
func (c *Cache) Load(ctx context.Context, sdkAppID int64) (Settings, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[sdkAppID]; ok && now.Sub(e.at) < c.ttl {
		set := e.set.clone()
		c.mu.Unlock()
		return set, nil
	}
	gen := c.gen
	c.mu.Unlock()

	set, err := Load(ctx, c.st, sdkAppID)
	if err != nil {
		return Settings{}, err
	}
	c.mu.Lock()
	// An Invalidate while reading (of any app: they are rare) means the
	// value read may predate the change: serve it this once, keep it not.
	if c.gen == gen {
		c.entries[sdkAppID] = cacheEntry{set: set.clone(), at: now}
	}
	c.mu.Unlock()
	return set, nil
}

// Save validates and stores the app's settings as Save does, then drops
// the cached copy.
func (c *Cache) Save(ctx context.Context, sdkAppID int64, s Settings) error {
	err := Save(ctx, c.st, sdkAppID, s)
	c.Invalidate(sdkAppID) // even on error: the write may have happened
	return err
}

// Invalidate drops the app's cached settings (they changed, or the app
// was deleted): the next Load reads them again.
func (c *Cache) Invalidate(sdkAppID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, sdkAppID)
}

// clone copies s deeply, so that a caller decoding into its copy (as a
// partial update does) cannot change the cached one.
func (s Settings) clone() Settings {
	if s.MissedCallPush != nil {
		v := *s.MissedCallPush
		s.MissedCallPush = &v
	}
	return s
}
