package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// ClaimDeliveries leases up to limit due pending deliveries until
// leaseUntil, oldest NextAttemptAt first. The dialect's query does the
// locking: an IMMEDIATE transaction on SQLite, FOR UPDATE SKIP LOCKED on
// PostgreSQL, so concurrent workers and processes never share a lease.
func (db *DB) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		return []store.Delivery{}, nil
	}
	claim, err := db.prepared(ctx, db.d.ClaimDeliveries)
	if err != nil {
		return nil, db.fail("claim deliveries", err)
	}
	var ds []store.Delivery
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, claim).QueryContext(ctx, ms(leaseUntil), ms(now), limit)
		if err != nil {
			return err
		}
		ds, err = collect(rows, scanDelivery)
		return err
	})
	if err != nil {
		return nil, db.fail("claim deliveries", err)
	}
	// RETURNING has no order; workers expect the oldest first.
	slices.SortFunc(ds, func(a, b store.Delivery) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ds, nil
}

const finishDelivery = `UPDATE deliveries SET state = $2, attempts = $3, next_attempt_at = $4,
	reason = $5, updated_at = $6, lease_until = 0
WHERE id = $1`

// FinishAttempt records a (when non-nil, setting a.ID and filling its
// DeliveryID and PushID from d when empty) and d's new state in one
// transaction, and clears d's lease. A zero d.UpdatedAt becomes now.
func (db *DB) FinishAttempt(ctx context.Context, a *store.Attempt, d *store.Delivery) error {
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = now()
	}
	update, err := db.prepared(ctx, finishDelivery)
	if err != nil {
		return db.fail("finish attempt", err)
	}
	var insert *sql.Stmt
	if a != nil {
		if insert, err = db.prepared(ctx, insertAttemptQuery); err != nil {
			return db.fail("finish attempt", err)
		}
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		err := mustAffect(tx.StmtContext(ctx, update).ExecContext(ctx, d.ID, d.State, d.Attempts,
			ms(d.NextAttemptAt), d.Reason, ms(d.UpdatedAt)))
		if err != nil || a == nil {
			return err
		}
		return insertAttempt(ctx, tx.StmtContext(ctx, insert), a, d)
	})
	if err != nil {
		return db.fail("finish attempt", err)
	}
	d.LeaseUntil = time.Time{}
	return nil
}

// The claim index is partial on state = 'pending', so this count reads
// only the outbox, not the history.
const countPending = `SELECT COUNT(*) FROM deliveries WHERE state = 'pending'`

func (db *DB) OutboxDepth(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, countPending).Scan(&n)
	return n, db.fail("outbox depth", err)
}

// expirePushesIn is followed by the IN list of push IDs. It does not look
// at leases: a worker holding one is already sending, and its
// FinishAttempt will record what really happened.
const expirePushesIn = `UPDATE deliveries SET state = 'expired', reason = $1, updated_at = $2, lease_until = 0
WHERE state = 'pending' AND push_id IN (`

// ExpirePushes marks the pending deliveries of pushIDs expired with
// reason, in one transaction, and returns how many it changed.
func (db *DB) ExpirePushes(ctx context.Context, pushIDs []string, reason string, at time.Time) (int, error) {
	if len(pushIDs) == 0 {
		return 0, nil
	}
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(pushIDs, maxInList) {
			args := append([]any{reason, ms(at)}, anys(chunk)...)
			res, err := tx.ExecContext(ctx, expirePushesIn+placeholders(3, len(chunk))+")", args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, db.fail("expire pushes", err)
	}
	return int(n), nil
}

const (
	releaseDeliveryLeases = `UPDATE deliveries SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0`
	releaseWebhookLeases  = `UPDATE webhooks SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0`
)

// ReleaseLeases frees the leases of pending deliveries and webhooks in one
// transaction and returns how many it freed.
func (db *DB) ReleaseLeases(ctx context.Context) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{releaseDeliveryLeases, releaseWebhookLeases} {
			res, err := tx.ExecContext(ctx, q)
			if err != nil {
				return err
			}
			c, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += c
		}
		return nil
	})
	return int(n), db.fail("release leases", err)
}
