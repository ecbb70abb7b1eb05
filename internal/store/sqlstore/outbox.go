package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
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

// FinishAttempts records every Finish in one transaction. A group pays one
// commit, and, above one outcome, one multi-row statement per table and
// chunk instead of one statement per row: on SQLite each statement costs
// more in the driver than the row costs in the B-tree.
func (db *DB) FinishAttempts(ctx context.Context, fs []store.Finish) error {
	if len(fs) == 0 {
		return nil
	}
	at := now()
	for _, f := range fs {
		if f.Delivery.UpdatedAt.IsZero() {
			f.Delivery.UpdatedAt = at
		}
	}
	var err error
	if len(fs) > 1 && distinctDeliveries(fs) {
		err = db.finishGroup(ctx, fs)
	} else {
		err = db.finishEach(ctx, fs)
	}
	if err != nil {
		return db.fail("finish attempts", err)
	}
	for _, f := range fs {
		f.Delivery.LeaseUntil = time.Time{}
	}
	return nil
}

// distinctDeliveries tells whether no delivery appears twice: an UPDATE
// … FROM (VALUES …) would apply only one of two rows for the same target.
func distinctDeliveries(fs []store.Finish) bool {
	seen := make(map[int64]struct{}, len(fs))
	for _, f := range fs {
		if _, dup := seen[f.Delivery.ID]; dup {
			return false
		}
		seen[f.Delivery.ID] = struct{}{}
	}
	return true
}

// finishEach writes fs row by row with the prepared statements of
// FinishAttempt, setting attempt IDs.
func (db *DB) finishEach(ctx context.Context, fs []store.Finish) error {
	var stmts [4]*sql.Stmt
	for i, q := range []string{finishDelivery, insertAttemptQuery, markRegistrationSuccess, markRegistrationFailure} {
		s, err := db.prepared(ctx, q)
		if err != nil {
			return err
		}
		stmts[i] = s
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		update, insert := tx.StmtContext(ctx, stmts[0]), tx.StmtContext(ctx, stmts[1])
		markOK, markFailed := tx.StmtContext(ctx, stmts[2]), tx.StmtContext(ctx, stmts[3])
		for _, f := range fs {
			d := f.Delivery
			err := mustAffect(update.ExecContext(ctx, d.ID, d.State, d.Attempts, ms(d.NextAttemptAt), d.Reason, ms(d.UpdatedAt)))
			if err != nil {
				return fmt.Errorf("delivery %d: %w", d.ID, err)
			}
			if f.Attempt != nil {
				if err := insertAttempt(ctx, insert, f.Attempt, d); err != nil {
					return fmt.Errorf("attempt of delivery %d: %w", d.ID, err)
				}
			}
			if err := markIn(ctx, markOK, markFailed, d, f.Mark); err != nil {
				return fmt.Errorf("registration of delivery %d: %w", d.ID, err)
			}
		}
		return nil
	})
}

// Multi-row forms of the finish statements. VALUES columns are named
// column1, column2, … on both engines; the CASTs give PostgreSQL the
// types it cannot infer for a bare parameter in VALUES.
const (
	finishDeliveriesPrefix = `UPDATE deliveries SET state = v.column2, attempts = v.column3,
	next_attempt_at = v.column4, reason = v.column5, updated_at = v.column6, lease_until = 0
FROM (VALUES `
	finishDeliveriesSuffix = `) AS v WHERE deliveries.id = v.column1`
	insertAttemptsPrefix   = `INSERT INTO attempts (delivery_id, push_id, at, environment, host,
	certificate_id, apns_id, apns_unique_id, status, reason, latency_ns, classification, diagnosis)
VALUES `
	markSuccessesPrefix = `UPDATE registrations SET last_success_at = v.column3
FROM (VALUES `
	markSuccessesSuffix = `) AS v WHERE registrations.sdk_app_id = v.column1 AND registrations.token = v.column2`
)

var (
	finishDeliveryTypes = []string{"BIGINT", "", "INTEGER", "BIGINT", "", "BIGINT"}
	markSuccessTypes    = []string{"BIGINT", "", "BIGINT"}
)

// finishRows bounds the rows of one multi-row statement: 13 columns × 64
// rows stays far below both engines' parameter limits.
const finishRows = 64

// groupStmt is one statement of a group: its text, its arguments and, for
// the deliveries' update, how many rows it must change.
type groupStmt struct {
	query    string
	args     []any
	mustRows int // 0: any
	stmt     *sql.Stmt
}

// finishGroup writes fs with multi-row statements, finishRows at a time.
// Attempt IDs are not read back: the workers never use them. A delivery
// that is gone fails the whole group with store.ErrNotFound, as it fails
// FinishAttempt. Statements are prepared (once per distinct row count)
// before the transaction, which on SQLite holds the only writer
// connection.
func (db *DB) finishGroup(ctx context.Context, fs []store.Finish) error {
	var plan []groupStmt
	for chunk := range slices.Chunk(fs, finishRows) {
		plan = append(plan, db.finishDeliveriesStmt(chunk))
		if st, ok := db.insertAttemptsStmt(chunk); ok {
			plan = append(plan, st)
		}
		plan = append(plan, db.markStmts(chunk)...)
	}
	for i := range plan {
		s, err := db.prepared(ctx, plan[i].query)
		if err != nil {
			return err
		}
		plan[i].stmt = s
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, st := range plan {
			res, err := tx.StmtContext(ctx, st.stmt).ExecContext(ctx, st.args...)
			if err != nil {
				return err
			}
			if st.mustRows == 0 {
				continue
			}
			if n, err := res.RowsAffected(); err != nil || int(n) != st.mustRows {
				return fmt.Errorf("%d deliveries to finish, %d found (%v): %w", st.mustRows, n, err, store.ErrNotFound)
			}
		}
		return nil
	})
}

func (db *DB) finishDeliveriesStmt(fs []store.Finish) groupStmt {
	args := make([]any, 0, 6*len(fs))
	for _, f := range fs {
		d := f.Delivery
		args = append(args, d.ID, d.State, d.Attempts, ms(d.NextAttemptAt), d.Reason, ms(d.UpdatedAt))
	}
	q := finishDeliveriesPrefix + db.castRows(len(fs), finishDeliveryTypes) + finishDeliveriesSuffix
	return groupStmt{query: q, args: args, mustRows: len(fs)}
}

func (db *DB) insertAttemptsStmt(fs []store.Finish) (groupStmt, bool) {
	args := make([]any, 0, 13*len(fs))
	rows := 0
	for _, f := range fs {
		a, d := f.Attempt, f.Delivery
		if a == nil {
			continue
		}
		if a.DeliveryID == 0 {
			a.DeliveryID = d.ID
		}
		if a.PushID == "" {
			a.PushID = d.PushID
		}
		args = append(args, a.DeliveryID, a.PushID, ms(a.At), a.Environment, a.Host, a.CertificateID, a.APNsID,
			a.APNsUniqueID, a.Status, a.Reason, int64(a.Latency), a.Classification, a.Diagnosis)
		rows++
	}
	return groupStmt{query: insertAttemptsPrefix + db.valueRows(rows, 13), args: args}, rows > 0
}

// markStmts records the marks: successes, the common case, in one
// statement (the latest per registration); failures, rare, one by one.
func (db *DB) markStmts(fs []store.Finish) []groupStmt {
	type key struct {
		app   int64
		token string
	}
	var out []groupStmt
	latest := map[key]time.Time{}
	var order []key
	for _, f := range fs {
		m, d := f.Mark, f.Delivery
		switch {
		case m == nil:
		case m.Reason != "":
			out = append(out, groupStmt{query: markRegistrationFailure, args: []any{d.SDKAppID, d.Token, ms(m.At), m.Reason}})
		default:
			k := key{d.SDKAppID, d.Token}
			t, seen := latest[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || m.At.After(t) {
				latest[k] = m.At
			}
		}
	}
	if len(order) == 0 {
		return out
	}
	args := make([]any, 0, 3*len(order))
	for _, k := range order {
		args = append(args, k.app, k.token, ms(latest[k]))
	}
	q := markSuccessesPrefix + db.castRows(len(order), markSuccessTypes) + markSuccessesSuffix
	return append(out, groupStmt{query: q, args: args})
}

// markIn records m on d's registration; no row (the token was removed or
// registered again elsewhere meanwhile) is no error.
func markIn(ctx context.Context, ok, failed *sql.Stmt, d *store.Delivery, m *store.RegistrationMark) error {
	if m == nil {
		return nil
	}
	var err error
	if m.Reason == "" {
		_, err = ok.ExecContext(ctx, d.SDKAppID, d.Token, ms(m.At))
	} else {
		_, err = failed.ExecContext(ctx, d.SDKAppID, d.Token, ms(m.At), m.Reason)
	}
	return err
}
