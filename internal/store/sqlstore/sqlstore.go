// Package sqlstore implements store.Store once over database/sql for both
// dialects. The SQLite and PostgreSQL packages differ only in how they
// open connections, their schema, the outbox claim query and how they read
// driver errors; everything else is shared so the two cannot drift apart
// (the ntfy approach: abstract the queries, not the whole store).
//
// Every query uses $N placeholders, which both modernc.org/sqlite and pgx
// accept, and stores times as BIGINT unix milliseconds.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"

	"github.com/ringd/ringd/internal/store"
)

// Dialect is what one database engine supplies.
type Dialect struct {
	Name string // "sqlite" or "postgres", used in error messages

	// Migrations is the append-only schema history; version N is
	// Migrations[N-1].
	Migrations []Migration

	// LockMigrations, when set, runs first in the migration transaction so
	// that processes starting at once migrate one after the other.
	LockMigrations string

	// ClaimDeliveries leases due deliveries: $1 lease_until, $2 now,
	// $3 limit, returning DeliveryColumns. Row locking differs per engine.
	ClaimDeliveries string

	// ClaimWebhooks is the same for the webhook outbox, returning
	// WebhookColumns.
	ClaimWebhooks string

	// AnonymousParams makes the long generated argument lists (multi-row
	// INSERTs, IN lists) use "?" instead of "$N". SQLite treats "$N" as a
	// named parameter and looks each one up in a linear list, so a
	// statement with thousands of them costs quadratic time to prepare
	// and to bind.
	AnonymousParams bool

	// ConsecutiveIDs says that a multi-row INSERT gives the rows of its
	// VALUES consecutive IDs in their order, ending at the ID the result
	// reports as the last inserted. SQLite does: one writer at a time, and
	// each AUTOINCREMENT row takes the largest ID so far plus one. The IDs
	// of new deliveries are then known without RETURNING, whose rows cost
	// more than the INSERT they come from (docs/performance.md). PostgreSQL
	// sequences give no such promise under concurrent inserts.
	ConsecutiveIDs bool

	// Classify maps a driver error to store.ErrConflict, ErrNotFound or
	// ErrUnavailable, or returns nil when none applies.
	Classify func(error) error
}

// DB is a store.Store over one writer pool and one reader pool, which are
// the same pool on PostgreSQL. SQLite gives writes a single connection so
// they queue in Go instead of failing with SQLITE_BUSY.
type DB struct {
	w, r   *sql.DB
	d      Dialect
	closed atomic.Bool
	stmts  stmtCache // the hot statements, prepared on w (stmts.go)
	rstmts stmtCache // the hot reads, prepared on r
}

var _ store.Store = (*DB)(nil)

// New migrates the database through w and returns the store. It takes
// ownership of both pools: on error they are closed.
func New(ctx context.Context, w, r *sql.DB, d Dialect) (*DB, error) {
	db := &DB{w: w, r: r, d: d}
	if err := db.migrate(ctx); err != nil {
		err = db.fail("migrate", err) // before Close, which makes every error ErrUnavailable
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools. Later calls fail with store.ErrUnavailable.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	err := errors.Join(db.closeStmts(), db.w.Close())
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Ping checks that both pools reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return db.fail("ping", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return db.fail("ping", err)
	}
	return nil
}

// inTx runs fn in a write transaction, committing when fn returns nil.
// On SQLite the writer begins IMMEDIATE, so the write lock is held from
// the first statement and a read-then-write never hits SQLITE_BUSY.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTxOptions make the reads of one call (its row, then its
// participants) see one snapshot. PostgreSQL needs REPEATABLE READ for
// that; SQLite's transactions always read one snapshot, and the driver
// ignores the level.
var readTxOptions = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}

// inReadTx runs fn in a read-only transaction on the reader pool.
func (db *DB) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, readTxOptions)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // nothing to commit
	return fn(tx)
}

// mustAffect turns "no row changed" into store.ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
