package sqlstore

import (
	"context"
	"database/sql"
	"math"

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

const insertPush = `INSERT INTO pushes (` + pushColumns + `) VALUES ($1, $2, $3, $4, $5, $6)`

// CreatePush writes the push and its deliveries in one transaction, so
// the outbox never holds deliveries of a push that was not accepted. Each
// delivery takes the push's ID, and its app and user when left empty; an
// empty State becomes pending and a zero UpdatedAt the push's CreatedAt.
func (db *DB) CreatePush(ctx context.Context, p *store.Push, ds []*store.Delivery) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, insertPush,
			p.ID, p.SDKAppID, p.UserID, p.Request, ms(p.CreatedAt), ms(p.ExpiresAt))
		if err != nil {
			return err
		}
		return insertDeliveries(ctx, tx, p, ds)
	})
	if err != nil {
		for _, d := range ds {
			d.ID = 0 // rolled back
		}
	}
	return db.fail("create push", err)
}

const selectPush = `SELECT ` + pushColumns + ` FROM pushes WHERE id = $1 AND sdk_app_id = $2`

func (db *DB) Push(ctx context.Context, sdkAppID int64, id string) (*store.Push, error) {
	p, err := scanPush(db.r.QueryRowContext(ctx, selectPush, id, sdkAppID))
	if err != nil {
		return nil, db.fail("push", err)
	}
	return &p, nil
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
