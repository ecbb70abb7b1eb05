package settings

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memStore keeps settings JSON per app and counts reads.
type memStore struct {
	mu     sync.Mutex
	raw    map[int64][]byte
	reads  int
	fail   error
	during func() // runs inside AppSettings, after the value is read
}

func (m *memStore) AppSettings(_ context.Context, app int64) ([]byte, error) {
	m.mu.Lock()
	m.reads++
	raw, err, during := m.raw[app], m.fail, m.during
	m.during = nil
	m.mu.Unlock()
	if during != nil {
		during()
	}
	return raw, err
}

func (m *memStore) PutAppSettings(_ context.Context, app int64, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.raw[app] = b
	return nil
}

func (m *memStore) Reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

func TestCache(t *testing.T) {
	const app = 1400000001
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// run acts on the cache and returns the ring timeout the next Load
		// must give and how many reads the whole test makes.
		run       func(t *testing.T, c *Cache, st *memStore, now *time.Time)
		wantRing  int
		wantReads int
	}{
		{"cached", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			*now = now.Add(DefaultCacheTTL - time.Millisecond)
		}, 10, 1},
		{"read again after the TTL", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			*now = now.Add(DefaultCacheTTL)
		}, 10, 2},
		{"saved through the cache", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			s := Defaults()
			s.RingTimeout = 20
			if err := c.Save(ctx, app, s); err != nil {
				t.Fatal(err)
			}
		}, 20, 2},
		{"written elsewhere, invalidated", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			_ = st.PutAppSettings(ctx, app, []byte(`{"ring_timeout":30}`))
			c.Invalidate(app)
		}, 30, 2},
		{"written elsewhere, not invalidated: stale until the TTL", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			_ = st.PutAppSettings(ctx, app, []byte(`{"ring_timeout":30}`))
		}, 10, 1},
		{"a failed read is not cached", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			c.Invalidate(app)
			st.fail = errors.New("disk on fire")
			if _, err := c.Load(ctx, app); err == nil {
				t.Fatal("Load hid the store's error")
			}
			st.fail = nil
		}, 10, 3},
		{"invalidated during a read: that read is not kept", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			c.Invalidate(app)
			st.during = func() {
				_ = st.PutAppSettings(ctx, app, []byte(`{"ring_timeout":40}`))
				c.Invalidate(app)
			}
			if s, err := c.Load(ctx, app); err != nil || s.RingTimeout != 10 {
				t.Fatalf("Load during a change = %d, %v; want the value read, 10", s.RingTimeout, err)
			}
		}, 40, 3},
		{"a caller's copy is its own", func(t *testing.T, c *Cache, st *memStore, now *time.Time) {
			s, err := c.Load(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			*s.MissedCallPush = false
			s.RingTimeout = 99
			if s, _ := c.Load(ctx, app); !s.SendMissedCallPush() {
				t.Fatal("changing a loaded copy changed the cache")
			}
		}, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &memStore{raw: map[int64][]byte{app: []byte(`{"ring_timeout":10}`)}}
			now := t0
			c := NewCache(st, 0, func() time.Time { return now })
			if s, err := c.Load(ctx, app); err != nil || s.RingTimeout != 10 {
				t.Fatalf("first Load = %d, %v", s.RingTimeout, err)
			}
			tt.run(t, c, st, &now)
			s, err := c.Load(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			if s.RingTimeout != tt.wantRing {
				t.Errorf("ring timeout %d, want %d", s.RingTimeout, tt.wantRing)
			}
			if got := st.Reads(); got != tt.wantReads {
				t.Errorf("%d reads, want %d", got, tt.wantReads)
			}
		})
	}
}
