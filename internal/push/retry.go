package push

import (
	"math/rand/v2"
	"time"
)

// backoffCeiling is BackoffBase*2^(attempts-1), capped at BackoffMax: the
// upper bound of the wait after the given number of failed attempts.
func backoffCeiling(base, maxWait time.Duration, attempts int) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	ceiling := base
	for i := 1; i < attempts && ceiling < maxWait; i++ {
		ceiling *= 2
	}
	return min(ceiling, maxWait)
}

// backoff draws the wait before the next attempt with full jitter
// (uniform in [0, ceiling]), which spreads the retries of a burst that
// failed together instead of sending them back to APNs in lockstep.
func backoff(base, maxWait time.Duration, attempts int) time.Duration {
	ceiling := backoffCeiling(base, maxWait, attempts)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// retryPlan is what happens to a delivery after a transient failure.
type retryPlan struct {
	state string    // pending, expired or failed
	next  time.Time // for pending
	wait  time.Duration
}

// planRetry decides a transient failure's fate: again after a backoff (at
// once when immediate, e.g. ExpiredProviderToken, since the client already
// holds a fresh token), unless the attempts are used up or the next try
// would come after the push expires: a call push is useless once ringing
// has stopped, so it is not kept for later.
func (c *Config) planRetry(attempts int, now, expiresAt time.Time, immediate bool) retryPlan {
	if attempts >= c.MaxAttempts {
		return retryPlan{state: stateFailed}
	}
	var wait time.Duration
	if !immediate {
		wait = backoff(c.BackoffBase, c.BackoffMax, attempts)
	}
	next := now.Add(wait)
	if !expiresAt.IsZero() && !next.Before(expiresAt) {
		return retryPlan{state: stateExpired}
	}
	return retryPlan{state: statePending, next: next, wait: wait}
}
