package calls

import (
	"context"
	"errors"

	"github.com/ringd/ringd/internal/groupcommit"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/store"
)

// maxBatch bounds the changes of one batch, so that one transaction stays
// short however far the writer has fallen behind.
const maxBatch = 128

// callWrite is one call change to store: the call's new state and the
// pushes the change sends, written in the same transaction.
type callWrite struct {
	call   *store.Call
	pushes []*push.Staged
}

// newCommitter batches the writes of call changes. Each call has at most
// one change in flight (its lock is held), so a batch never holds a call
// twice. When a batch fails for one call's sake (a conflict, an app
// deleted meanwhile), each change is written again on its own, so that
// the others do not fail with it; a store that is unavailable fails them
// all. A change's pushes are written with it or not at all: the pipeline
// sends those written and drops the others (Pusher.Commit).
//
// A change waits, under its call's lock, until the batch holding it is
// written (groupcommit), so events still go out only once the state they
// describe is durable, and a push rings only for a call that is stored.
func newCommitter(st store.CallStore, p Pusher) *groupcommit.Group[callWrite] {
	return &groupcommit.Group[callWrite]{Max: maxBatch, Timeout: opTimeout, Write: func(ctx context.Context, ws []callWrite) []error {
		errs := make([]error, len(ws))
		groups := make([][]*push.Staged, len(ws))
		for i, w := range ws {
			groups[i] = w.pushes
		}
		p.Commit(ctx, groups, func() []bool {
			writeCalls(ctx, st, ws, errs)
			written := make([]bool, len(ws))
			for i, err := range errs {
				written[i] = err == nil
			}
			return written
		})
		return errs
	}}
}

// writeCalls writes ws in one transaction, or each on its own when that
// fails for one change's sake, and sets errs.
func writeCalls(ctx context.Context, st store.CallStore, ws []callWrite, errs []error) {
	put := func(ws []callWrite) error {
		calls := make([]*store.Call, len(ws))
		var pushes []store.PushWithDeliveries
		for i, w := range ws {
			calls[i] = w.call
			for _, s := range w.pushes {
				if pd := s.Push(); pd.Push != nil { // a fake pipeline's staged push has none
					pushes = append(pushes, pd)
				}
			}
		}
		return st.PutCallsWithPushes(ctx, calls, pushes)
	}
	err := put(ws)
	if len(ws) == 1 || err == nil || errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	for i := range ws {
		errs[i] = put(ws[i : i+1])
	}
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
