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
		{0, 400 * time.Millisecond},
		{1, 400 * time.Millisecond},
		{2, 800 * time.Millisecond},
		{5, 6400 * time.Millisecond},
		{7, 25600 * time.Millisecond},
		{8, 30 * time.Second},
		{1000, 30 * time.Second}, // no overflow
	}
	for _, tt := range tests {
		if got := backoffCeiling(base, maxWait, tt.attempts); got != tt.ceiling {
			t.Errorf("ceiling(%d) = %s, want %s", tt.attempts, got, tt.ceiling)
		}
		for range 200 {
			// Never below the base: two attempts of one delivery are at
			// least BackoffBase apart, whatever the failure.
			if d := backoff(base, maxWait, tt.attempts); d < base || d < tt.ceiling/2 || d > tt.ceiling {
				t.Fatalf("backoff(%d) = %s outside [%s, %s]", tt.attempts, d, max(base, tt.ceiling/2), tt.ceiling)
			}
		}
	}
	// A BackoffMax below twice the base still waits the base.
	if d := backoff(time.Second, time.Second, 3); d != time.Second {
		t.Errorf("backoff with max == base = %s", d)
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
	if p := c.planRetry(1, now, far, retryCause{}); p.state != statePending || p.next.Before(now.Add(c.BackoffBase)) || p.next.After(now.Add(2*c.BackoffBase)) {
		t.Errorf("first retry %+v", p)
	}
	if p := c.planRetry(2, now, far, retryCause{immediate: true}); p.state != statePending || !p.next.Equal(now) {
		t.Errorf("immediate retry %+v", p)
	}
	if p := c.planRetry(3, now, far, retryCause{budgetSpent: true}); p.state != stateFailed {
		t.Errorf("after max attempts %+v", p)
	}
	if p := c.planRetry(30, now, far, retryCause{}); p.state != statePending {
		t.Errorf("unanswered failures past MaxAttempts give up: %+v", p)
	}
	if p := c.planRetry(1, now, now, retryCause{immediate: true}); p.state != stateExpired {
		t.Errorf("at expiry %+v", p)
	}
	// The APNs pool backs off its dials for 20s: the next attempt waits
	// for it, and a push that expires before then is expired at once.
	if p := c.planRetry(1, now, far, retryCause{notBefore: 20 * time.Second}); p.state != statePending || p.wait != 20*time.Second {
		t.Errorf("pool backoff %+v", p)
	}
	if p := c.planRetry(1, now, now.Add(10*time.Second), retryCause{notBefore: 20 * time.Second}); p.state != stateExpired {
		t.Errorf("pool backoff past expiry %+v", p)
	}
}
