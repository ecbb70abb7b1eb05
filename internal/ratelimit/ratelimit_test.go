package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimiterAllow(t *testing.T) {
	type step struct {
		advance time.Duration
		key     string
		ok      bool
		retry   time.Duration
	}
	tests := []struct {
		name  string
		burst int
		per   time.Duration
		steps []step
	}{
		{"burst then refused", 3, time.Minute, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{0, "a", false, 20 * time.Second},
			{0, "b", true, 0}, // keys are independent
		}},
		{"refills at burst per period", 2, 10 * time.Second, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, 5 * time.Second},
			{4 * time.Second, "a", false, time.Second},
			{time.Second, "a", true, 0},
			{0, "a", false, 5 * time.Second},
		}},
		{"never more than the burst", 2, time.Second, []step{
			{time.Hour, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, time.Second},
		}},
		{"retry-after is at least a second", 100, time.Second, func() []step {
			s := make([]step, 0, 101)
			for range 100 {
				s = append(s, step{0, "a", true, 0})
			}
			return append(s, step{0, "a", false, time.Second})
		}()},
		{"disabled", 0, time.Minute, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := New(Config{Burst: tt.burst, Per: tt.per, Now: clk.Now})
			for i, s := range tt.steps {
				clk.Add(s.advance)
				ok, retry := l.Allow(s.key)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

// Blocked and Take are how failed logins are counted: Take after each
// failure, Blocked before each attempt (whether or not it would succeed).
func TestLimiterBlockedTake(t *testing.T) {
	clk := newClock()
	l := New(Config{Burst: 3, Per: 30 * time.Second, Now: clk.Now})
	if b, _ := l.Blocked("ip"); b {
		t.Fatal("a new key is blocked")
	}
	if l.Len() != 0 {
		t.Fatalf("Blocked stored a key: Len = %d", l.Len())
	}
	for i, want := range []bool{false, false, true, true} {
		if got := l.Take("ip"); got != want {
			t.Fatalf("Take #%d exhausted = %v, want %v", i+1, got, want)
		}
	}
	b, retry := l.Blocked("ip")
	if !b || retry != 10*time.Second {
		t.Fatalf("Blocked = %v, %v; want true, 10s", b, retry)
	}
	clk.Add(10 * time.Second)
	if b, _ := l.Blocked("ip"); b {
		t.Fatal("still blocked after the refill of one token")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	clk := newClock()
	l := New(Config{Burst: 5, Per: time.Minute, MaxKeys: 100, Now: clk.Now})
	for i := range 1000 {
		l.Take(fmt.Sprint("key", i))
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d after 1000 keys, want the bound 100", n)
	}
	// The most recent keys are the ones kept.
	if b := l.Take("key999"); b {
		t.Fatal("key999 was forgotten")
	}
	// Idle keys (a whole period unused) are dropped on the next use.
	clk.Add(time.Minute)
	l.Allow("fresh")
	if n := l.Len(); n != 1 {
		t.Fatalf("Len = %d after a period of idleness, want 1", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := New(Config{Burst: 1000, Per: time.Hour})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if ok, _ := l.Allow("shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Take(fmt.Sprint("g", g))
			}
		}()
	}
	wg.Wait()
	if allowed != 1000 {
		t.Fatalf("allowed %d of 4000, want exactly the burst 1000", allowed)
	}
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		name string
		max  int
		ops  string // a = acquire (expect ok), x = acquire (expect refused), r = release
		left int
	}{
		{"up to max", 2, "aax", 2},
		{"release frees a slot", 2, "aaxra", 2},
		{"all released", 3, "aaarrr", 0},
		{"unlimited", 0, "aaaaaa", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConcurrency(tt.max)
			for i, op := range tt.ops {
				switch op {
				case 'a', 'x':
					if got := c.Acquire("ip"); got != (op == 'a') {
						t.Fatalf("op %d: Acquire = %v", i, got)
					}
				case 'r':
					c.Release("ip")
				}
			}
			if got := c.InUse("ip"); got != tt.left {
				t.Fatalf("InUse = %d, want %d", got, tt.left)
			}
			if tt.left == 0 && c.Keys() != 0 {
				t.Fatalf("Keys = %d with nothing in use: memory is not released", c.Keys())
			}
		})
	}
}
