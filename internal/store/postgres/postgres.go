// Package postgres is ringd's store for deployments that outgrow one
// machine: several ringd processes share one PostgreSQL database.
//
// It goes through database/sql with pgx's stdlib driver rather than
// pgxpool so that it shares every query, scan and transaction helper with
// the SQLite store (internal/store/sqlstore); pgx still does the wire
// protocol, and nothing here needs pgx-only features such as COPY.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlstore"
)

// Store is a store.Store over a PostgreSQL database.
type Store struct {
	*sqlstore.DB
}

var _ store.Store = (*Store)(nil)

// Pool limits: bounded so that several ringd processes stay well inside
// PostgreSQL's default max_connections (100).
const (
	maxOpenConns    = 16
	connMaxIdleTime = 5 * time.Minute
)

// Open connects with dsn (a postgres:// URL or key=value string as pgx
// accepts; search_path may be set there) and migrates the schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, dialect)
}

func open(ctx context.Context, dsn string, d sqlstore.Dialect) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres open: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	s, err := sqlstore.New(ctx, db, db, d)
	if err != nil {
		return nil, err
	}
	return &Store{DB: s}, nil
}

var dialect = sqlstore.Dialect{
	Name:            "postgres",
	Migrations:      migrations,
	LockMigrations:  lockMigrations,
	ClaimDeliveries: claimDeliveries,
	ClaimWebhooks:   claimWebhooks,
	Classify:        classify,
}

// lockMigrations serializes ringd processes that start at once: the
// second waits, then finds the schema current. The lock is released at
// commit. The key is arbitrary but fixed ("ringd" in ASCII).
const lockMigrations = `SELECT pg_advisory_xact_lock(1919512164)`

// SKIP LOCKED lets several workers and processes claim at once, each
// passing over rows another has locked instead of waiting for them. The
// CTE is MATERIALIZED so the locking subquery runs exactly once: as an
// IN (...) subquery the planner may rescan it and lock more than $3 rows.
const claimDeliveries = `WITH due AS MATERIALIZED (
	SELECT id FROM deliveries
	WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
	ORDER BY next_attempt_at, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED)
UPDATE deliveries SET lease_until = $1
WHERE id IN (SELECT id FROM due)
RETURNING ` + sqlstore.DeliveryColumns

// The same pattern for the webhook outbox.
const claimWebhooks = `WITH due AS MATERIALIZED (
	SELECT id FROM webhooks
	WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
	ORDER BY next_attempt_at, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED)
UPDATE webhooks SET lease_until = $1
WHERE id IN (SELECT id FROM due)
RETURNING ` + sqlstore.WebhookColumns
