package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/ringd/ringd/internal/store"
)

// DeliveryColumns is what the dialects' claim queries return, in the
// order scanDelivery reads.
const DeliveryColumns = `id, push_id, sdk_app_id, user_id, token, certificate_id, environment,
	kind, device_id, apns_id, state, attempts, next_attempt_at, lease_until, reason, updated_at`

func scanDelivery(row scanner) (store.Delivery, error) {
	var (
		d                    store.Delivery
		next, lease, updated int64
	)
	err := row.Scan(&d.ID, &d.PushID, &d.SDKAppID, &d.UserID, &d.Token, &d.CertificateID, &d.Environment,
		&d.Kind, &d.DeviceID, &d.APNsID, &d.State, &d.Attempts, &next, &lease, &d.Reason, &updated)
	d.NextAttemptAt, d.LeaseUntil, d.UpdatedAt = fromMS(next), fromMS(lease), fromMS(updated)
	return d, err
}

const insertDeliveriesPrefix = `INSERT INTO deliveries (push_id, sdk_app_id, user_id, token, certificate_id,
	environment, kind, device_id, apns_id, state, attempts, next_attempt_at, lease_until, reason, updated_at)
VALUES `

const insertDeliveriesReturning = ` RETURNING id, push_id, token, apns_id`

type deliveryKey struct{ push, token, apnsID string }

// insertDeliveriesQuery is the multi-row INSERT of rows deliveries: with
// RETURNING their IDs unless the dialect's IDs are consecutive.
func (db *DB) insertDeliveriesQuery(rows int) string {
	q := insertDeliveriesPrefix + db.valueRows(rows, 15)
	if !db.d.ConsecutiveIDs {
		q += insertDeliveriesReturning
	}
	return q
}

// insertDeliveries inserts ds, already filled, with multi-row INSERTs and
// sets their IDs. full, when not nil, is the prepared INSERT of a full
// chunk of deliveryRowsPerInsert rows; a smaller chunk's INSERT goes
// through tx as text, which pgx answers from its own statement cache
// where an explicit prepare would cost two more round trips.
func (db *DB) insertDeliveries(ctx context.Context, tx *sql.Tx, ds []*store.Delivery, full *sql.Stmt) error {
	for chunk := range slices.Chunk(ds, deliveryRowsPerInsert) {
		args := make([]any, 0, len(chunk)*15)
		for _, d := range chunk {
			args = append(args, d.PushID, d.SDKAppID, d.UserID, d.Token, d.CertificateID,
				d.Environment, d.Kind, d.DeviceID, d.APNsID, d.State, d.Attempts,
				ms(d.NextAttemptAt), ms(d.LeaseUntil), d.Reason, ms(d.UpdatedAt))
		}
		var stmt *sql.Stmt
		if full != nil && len(chunk) == deliveryRowsPerInsert {
			stmt = tx.StmtContext(ctx, full)
		}
		if err := db.insertChunk(ctx, tx, stmt, args, chunk); err != nil {
			return err
		}
	}
	return nil
}

// insertChunk runs the INSERT of one chunk, stmt when not nil or else its
// text through tx, and sets the chunk's IDs as the dialect allows.
func (db *DB) insertChunk(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, args []any, chunk []*store.Delivery) error {
	if db.d.ConsecutiveIDs {
		var res sql.Result
		var err error
		if stmt != nil {
			res, err = stmt.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, db.insertDeliveriesQuery(len(chunk)), args...)
		}
		if err != nil {
			return err
		}
		return setConsecutiveIDs(res, chunk)
	}
	var rows *sql.Rows
	var err error
	if stmt != nil {
		rows, err = stmt.QueryContext(ctx, args...)
	} else {
		rows, err = tx.QueryContext(ctx, db.insertDeliveriesQuery(len(chunk)), args...)
	}
	if err != nil {
		return err
	}
	return setReturnedIDs(rows, chunk)
}

// setConsecutiveIDs gives the rows of chunk, inserted with res, the IDs
// that end at the last inserted one (Dialect.ConsecutiveIDs).
func setConsecutiveIDs(res sql.Result, chunk []*store.Delivery) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	last, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if int(n) != len(chunk) || last < n {
		return fmt.Errorf("insert deliveries: %d rows inserted for %d, the last with ID %d", n, len(chunk), last)
	}
	first := last - n + 1
	for i, d := range chunk {
		d.ID = first + int64(i)
	}
	return nil
}

// setReturnedIDs reads the RETURNING rows of chunk's INSERT and matches
// each returned ID to its delivery by (push, token, apns-id): RETURNING
// gives no row order on either engine, and rows equal in all three take
// their IDs in insertion order.
func setReturnedIDs(rows *sql.Rows, chunk []*store.Delivery) error {
	type returned struct {
		id  int64
		key deliveryKey
	}
	got := make([]returned, 0, len(chunk))
	err := eachRow(rows, func(row scanner) error {
		var r returned
		if err := row.Scan(&r.id, &r.key.push, &r.key.token, &r.key.apnsID); err != nil {
			return err
		}
		got = append(got, r)
		return nil
	})
	if err != nil {
		return err
	}
	if len(got) != len(chunk) {
		return fmt.Errorf("insert deliveries: %d rows returned for %d inserted", len(got), len(chunk))
	}
	slices.SortFunc(got, func(a, b returned) int { return cmp.Compare(a.id, b.id) })
	waiting := make(map[deliveryKey][]*store.Delivery, len(chunk))
	for _, d := range chunk {
		k := deliveryKey{d.PushID, d.Token, d.APNsID}
		waiting[k] = append(waiting[k], d)
	}
	for _, r := range got {
		q := waiting[r.key]
		if len(q) == 0 {
			return fmt.Errorf("insert deliveries: returned row %d matches no delivery", r.id)
		}
		q[0].ID = r.id
		waiting[r.key] = q[1:]
	}
	return nil
}

func fillDelivery(p *store.Push, d *store.Delivery) {
	d.PushID = p.ID
	if d.SDKAppID == 0 {
		d.SDKAppID = p.SDKAppID
	}
	if d.UserID == "" {
		d.UserID = p.UserID
	}
	if d.State == "" {
		d.State = store.DeliveryPending
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = p.CreatedAt
	}
}

const selectDeliveries = `SELECT ` + DeliveryColumns + ` FROM deliveries WHERE push_id = $1 ORDER BY id`

func (db *DB) Deliveries(ctx context.Context, pushID string) ([]store.Delivery, error) {
	rows, err := db.r.QueryContext(ctx, selectDeliveries, pushID)
	if err != nil {
		return nil, db.fail("deliveries", err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, db.fail("deliveries", err)
}
