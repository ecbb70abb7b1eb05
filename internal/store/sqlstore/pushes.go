package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"slices"

	"github.com/ringd/ringd/internal/store"
)

const pushColumns = `id, sdk_app_id, user_id, request, created_at, expires_at`

func scanPush(row scanner) (store.Push, error) {
	var (
		p                store.Push
		created, expires int64
	)
	err := row.Scan(&p.ID, &p.SDKAppID, &p.UserID, &p.Request, &created, &expires)
	p.CreatedAt, p.ExpiresAt = fromMS(created), fromMS(expires)
	return p, err
}

const insertPushes = `INSERT INTO pushes (` + pushColumns + `) VALUES `

// Rows per multi-row INSERT. With 6 and 15 columns that is at most 6000
// and 7500 parameters per statement, far under SQLite's 32766 and
// PostgreSQL's 65535.
const (
	pushRowsPerInsert     = 1000
	deliveryRowsPerInsert = 500
)

// CreatePush writes the push and its deliveries in one transaction, so
// the outbox never holds deliveries of a push that was not accepted. Each
// delivery takes the push's ID, and its app and user when left empty; an
// empty State becomes pending and a zero UpdatedAt the push's CreatedAt.
func (db *DB) CreatePush(ctx context.Context, p *store.Push, ds []*store.Delivery) error {
	return db.fail("create push", db.createPushes(ctx, []store.PushWithDeliveries{{Push: p, Deliveries: ds}}))
}

// chunkStmts are the multi-row INSERTs of full chunks, prepared once: a
// statement with thousands of parameters costs more to parse than its rows
// cost to write. Smaller last chunks vary in size and are not kept.
type chunkStmts struct{ pushes, deliveries *sql.Stmt }

// fullChunkStmts prepares what a write of pushes and deliveries rows will
// use, before its transaction takes SQLite's only writer connection.
func (db *DB) fullChunkStmts(ctx context.Context, pushes, deliveries int) (chunkStmts, error) {
	var c chunkStmts
	var err error
	if pushes >= pushRowsPerInsert {
		if c.pushes, err = db.prepared(ctx, insertPushes+db.valueRows(pushRowsPerInsert, 6)); err != nil {
			return c, err
		}
	}
	if deliveries >= deliveryRowsPerInsert {
		c.deliveries, err = db.prepared(ctx, db.insertDeliveriesQuery(deliveryRowsPerInsert))
	}
	return c, err
}

// CreatePushes writes every push and its deliveries, filled as by
// CreatePush, in one transaction with multi-row INSERTs: a whole batch is
// one commit. On error nothing is written and every delivery ID is 0.
func (db *DB) CreatePushes(ctx context.Context, ps []store.PushWithDeliveries) error {
	return db.fail("create pushes", db.createPushes(ctx, ps))
}

func (db *DB) createPushes(ctx context.Context, ps []store.PushWithDeliveries) error {
	write, rolledBack, err := db.pushesWrite(ctx, ps)
	if err != nil || write == nil {
		return err
	}
	if err := db.inTx(ctx, write); err != nil {
		rolledBack()
		return err
	}
	return nil
}

// pushesWrite readies ps for writing (filled as by CreatePush, statements
// prepared) and returns the work of the transaction, nil when there is
// nothing to write, and what to do when that transaction rolls back.
func (db *DB) pushesWrite(ctx context.Context, ps []store.PushWithDeliveries) (write func(*sql.Tx) error, rolledBack func(), err error) {
	if len(ps) == 0 {
		return nil, nil, nil
	}
	n := 0
	for _, pd := range ps {
		n += len(pd.Deliveries)
	}
	ds := make([]*store.Delivery, 0, n)
	for _, pd := range ps {
		if pd.Push.CreatedAt.IsZero() {
			pd.Push.CreatedAt = now()
		}
		for _, d := range pd.Deliveries {
			fillDelivery(pd.Push, d)
			ds = append(ds, d)
		}
	}
	full, err := db.fullChunkStmts(ctx, len(ps), len(ds))
	if err != nil {
		return nil, nil, err
	}
	write = func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(ps, pushRowsPerInsert) {
			args := make([]any, 0, len(chunk)*6)
			for _, pd := range chunk {
				p := pd.Push
				args = append(args, p.ID, p.SDKAppID, p.UserID, p.Request, ms(p.CreatedAt), ms(p.ExpiresAt))
			}
			var err error
			if len(chunk) == pushRowsPerInsert {
				_, err = tx.StmtContext(ctx, full.pushes).ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, insertPushes+db.valueRows(len(chunk), 6), args...)
			}
			if err != nil {
				return err
			}
		}
		return db.insertDeliveries(ctx, tx, ds, full.deliveries)
	}
	rolledBack = func() {
		for _, d := range ds {
			d.ID = 0
		}
	}
	return write, rolledBack, nil
}

const selectPush = `SELECT ` + pushColumns + ` FROM pushes WHERE id = $1 AND sdk_app_id = $2`

func (db *DB) Push(ctx context.Context, sdkAppID int64, id string) (*store.Push, error) {
	p, err := scanPush(db.r.QueryRowContext(ctx, selectPush, id, sdkAppID))
	if err != nil {
		return nil, db.fail("push", err)
	}
	return &p, nil
}

const selectPushesIn = `SELECT ` + pushColumns + ` FROM pushes WHERE id IN (`

// PushesByID reads the pushes in IN lists of up to maxInList IDs.
func (db *DB) PushesByID(ctx context.Context, ids []string) (map[string]*store.Push, error) {
	out := make(map[string]*store.Push, len(ids))
	for chunk := range slices.Chunk(ids, maxInList) {
		rows, err := db.r.QueryContext(ctx, selectPushesIn+placeholders(1, len(chunk))+")", anys(chunk)...)
		if err != nil {
			return nil, db.fail("pushes by id", err)
		}
		ps, err := collect(rows, scanPush)
		if err != nil {
			return nil, db.fail("pushes by id", err)
		}
		for i := range ps {
			out[ps[i].ID] = &ps[i]
		}
	}
	return out, nil
}

// Two queries rather than "$2 = ” OR user_id = $2", which would keep
// PostgreSQL's generic plans off the (app, user, created_at) index.
const (
	selectPushes = `SELECT ` + pushColumns + ` FROM pushes
WHERE sdk_app_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	selectUserPushes = `SELECT ` + pushColumns + ` FROM pushes
WHERE sdk_app_id = $1 AND user_id = $3 ORDER BY created_at DESC, id DESC LIMIT $2`
)

// Pushes lists an app's pushes, newest first; userID "" means every user
// and limit <= 0 means no limit.
func (db *DB) Pushes(ctx context.Context, sdkAppID int64, userID string, limit int) ([]store.Push, error) {
	n := int64(limit)
	if limit <= 0 {
		n = math.MaxInt64
	}
	var (
		rows *sql.Rows
		err  error
	)
	if userID == "" {
		rows, err = db.r.QueryContext(ctx, selectPushes, sdkAppID, n)
	} else {
		rows, err = db.r.QueryContext(ctx, selectUserPushes, sdkAppID, n, userID)
	}
	if err != nil {
		return nil, db.fail("pushes", err)
	}
	pushes, err := collect(rows, scanPush)
	return pushes, db.fail("pushes", err)
}
