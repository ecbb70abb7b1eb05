package push

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	base, maxWait := 200*time.Millisecond, 30*time.Second
	tests := []struct {
		attempts int
		ceiling  time.Duration
	}{
		{0, 200 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{5, 3200 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second},
		{1000, 30 * time.Second}, // no overflow
	}
	for _, tt := range tests {
		if got := backoffCeiling(base, maxWait, tt.attempts); got != tt.ceiling {
			t.Errorf("ceiling(%d) = %s, want %s", tt.attempts, got, tt.ceiling)
		}
		for range 200 {
			if d := backoff(base, maxWait, tt.attempts); d < 0 || d > tt.ceiling {
				t.Fatalf("backoff(%d) = %s outside [0, %s]", tt.attempts, d, tt.ceiling)
			}
		}
	}
}

func TestBackoffIsJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[backoff(time.Second, time.Minute, 4)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct waits in 50 draws: no jitter?", len(seen))
	}
}

func TestPlanRetry(t *testing.T) {
	c := Config{MaxAttempts: 3}.withDefaults()
	now := time.Unix(1_700_000_000, 0)
	far := now.Add(time.Hour)
	if p := c.planRetry(1, now, far, false); p.state != statePending || p.next.Before(now) || p.next.After(now.Add(c.BackoffBase)) {
		t.Errorf("first retry %+v", p)
	}
	if p := c.planRetry(2, now, far, true); p.state != statePending || !p.next.Equal(now) {
		t.Errorf("immediate retry %+v", p)
	}
	if p := c.planRetry(3, now, far, false); p.state != stateFailed {
		t.Errorf("after max attempts %+v", p)
	}
	if p := c.planRetry(1, now, now, true); p.state != stateExpired {
		t.Errorf("at expiry %+v", p)
	}
}
