package calls

import (
	"context"
	"errors"

	"github.com/ringd/ringd/internal/groupcommit"
	"github.com/ringd/ringd/internal/store"
)

// maxBatch bounds the changes of one batch, so that one transaction stays
// short however far the writer has fallen behind.
const maxBatch = 128

// newCommitter batches the writes of call changes. Each call has at most
// one change in flight (its lock is held), so a batch never holds a call
// twice. When a batch fails for one call's sake (a conflict, an app
// deleted meanwhile), each call is written again on its own, so that the
// others do not fail with it; a store that is unavailable fails them all.
//
// A change waits, under its call's lock, until the batch holding it is
// written (groupcommit), so events still go out only once the state they
// describe is durable.
func newCommitter(st store.CallStore) *groupcommit.Group[*store.Call] {
	return &groupcommit.Group[*store.Call]{Max: maxBatch, Timeout: opTimeout, Write: func(ctx context.Context, calls []*store.Call) []error {
		errs := make([]error, len(calls))
		if len(calls) == 1 {
			errs[0] = st.PutCall(ctx, calls[0])
			return errs
		}
		err := st.PutCalls(ctx, calls)
		if err == nil || errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
		for i, c := range calls {
			errs[i] = st.PutCall(ctx, c)
		}
		return errs
	}}
}

// pushExpiry is one change's request to expire pushes.
type pushExpiry struct {
	pushIDs []string
	reason  string
}

// newExpirer batches the expiry of ring pushes (calls answered, rejected,
// cancelled or timed out at once share one update of the outbox), one
// Expire per reason.
func newExpirer(p Pusher) *groupcommit.Group[pushExpiry] {
	return &groupcommit.Group[pushExpiry]{Max: maxBatch, Timeout: opTimeout, Write: func(ctx context.Context, es []pushExpiry) []error {
		errs := make([]error, len(es))
		done := make([]bool, len(es))
		for i, e := range es {
			if done[i] {
				continue
			}
			var ids []string
			var mine []int
			for j := i; j < len(es); j++ {
				if !done[j] && es[j].reason == e.reason {
					ids = append(ids, es[j].pushIDs...)
					mine = append(mine, j)
					done[j] = true
				}
			}
			err := p.Expire(ctx, ids, e.reason)
			for _, j := range mine {
				errs[j] = err
			}
		}
		return errs
	}}
}

// newSessionWriter batches the session records of devices connecting and
// disconnecting; a batch that fails for one session's sake (its app was
// deleted meanwhile) is written again one by one.
func newSessionWriter(st store.CallStore) *groupcommit.Group[*store.Session] {
	put := func(ctx context.Context, ss []*store.Session) error { return st.PutSessions(ctx, ss) }
	return &groupcommit.Group[*store.Session]{Max: maxBatch, Timeout: opTimeout,
		Write: groupcommit.AllOrEach(put, func(err error) bool { return !errors.Is(err, store.ErrUnavailable) })}
}
