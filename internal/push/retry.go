package push

import (
	"math/rand/v2"
	"time"
)

// backoffCeiling is BackoffBase*2^attempts, capped at BackoffMax (and never
// below BackoffBase): the upper bound of the wait after the given number of
// failed attempts.
func backoffCeiling(base, maxWait time.Duration, attempts int) time.Duration {
	attempts = max(attempts, 1)
	ceiling := base
	for i := 0; i < attempts && ceiling < maxWait; i++ {
		ceiling *= 2
	}
	return max(min(ceiling, maxWait), base)
}

// backoff draws the wait before the next attempt with "equal jitter":
// uniform in [ceiling/2, ceiling]. The jitter spreads the retries of a
// burst that failed together instead of sending them back to APNs in
// lockstep, and the floor keeps two attempts of one delivery at least
// BackoffBase apart, so no failure, however quick, makes a tight loop.
func backoff(base, maxWait time.Duration, attempts int) time.Duration {
	ceiling := backoffCeiling(base, maxWait, attempts)
	if ceiling <= 0 {
		return 0
	}
	half := ceiling / 2
	return max(half+time.Duration(rand.Int64N(int64(ceiling-half)+1)), min(base, ceiling))
}

// retryPlan is what happens to a delivery after a transient failure.
type retryPlan struct {
	state string    // pending, expired or failed
	next  time.Time // for pending
	wait  time.Duration
}

// retryCause is what planRetry needs to know about the failure.
type retryCause struct {
	// immediate retries at once (ExpiredProviderToken: the client already
	// holds a fresh token), once: a second one in a row backs off.
	immediate bool
	// notBefore is a wait the sender asked for (the APNs pool is backing
	// off its dials): the next attempt is not due before it.
	notBefore time.Duration
	// budgetSpent is true when the answered failures have used up
	// MaxAttempts. Failures without an answer (no connection, a reset, a
	// timeout) do not spend the budget: an APNs outage is waited out until
	// the push expires, with the backoff and the pool's dial backoff
	// bounding the pace.
	budgetSpent bool
}

// planRetry decides a transient failure's fate: again after a backoff,
// unless the budget of answered failures is spent or the next try would
// come after the push expires: a call push is useless once ringing has
// stopped, so it is not kept for later.
func (c *Config) planRetry(attempts int, now, expiresAt time.Time, cause retryCause) retryPlan {
	if cause.budgetSpent {
		return retryPlan{state: stateFailed}
	}
	var wait time.Duration
	if !cause.immediate {
		wait = max(backoff(c.BackoffBase, c.BackoffMax, attempts), cause.notBefore)
	}
	// The store keeps whole milliseconds and a claim compares truncated
	// times: rounded up, a retry is never claimed before its wait is over.
	next := ceilMillisecond(now.Add(wait))
	if !expiresAt.IsZero() && !next.Before(expiresAt) {
		return retryPlan{state: stateExpired}
	}
	return retryPlan{state: statePending, next: next, wait: wait}
}

// ceilMillisecond rounds t up to a whole millisecond.
func ceilMillisecond(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}
