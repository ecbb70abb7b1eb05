package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ringd/ringd/internal/store"
)

// Migration moves the schema one version up inside the migration
// transaction. Most are plain SQL (see SQL); a func leaves room for data
// migrations that need Go.
type Migration func(ctx context.Context, tx *sql.Tx) error

// SQL is a migration made of one SQL script; both drivers run scripts of
// several statements when no arguments are bound.
func SQL(script string) Migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, script)
		return err
	}
}

// The single row of schema_version holds how many migrations have run.
const (
	createSchemaVersion = `CREATE TABLE IF NOT EXISTS schema_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
)`
	selectSchemaVersion = `SELECT version FROM schema_version WHERE id = 1`
	insertSchemaVersion = `INSERT INTO schema_version (id, version) VALUES (1, 0)`
	updateSchemaVersion = `UPDATE schema_version SET version = $1 WHERE id = 1`
)

// migrate runs the missing migrations in one transaction, so a failed
// migration leaves the schema as it was, and refuses a database that a
// newer binary has already migrated past what this one knows.
func (db *DB) migrate(ctx context.Context) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if db.d.LockMigrations != "" {
			if _, err := tx.ExecContext(ctx, db.d.LockMigrations); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, createSchemaVersion); err != nil {
			return err
		}
		have, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		return db.migrateFrom(ctx, tx, have)
	})
}

func (db *DB) migrateFrom(ctx context.Context, tx *sql.Tx, have int) error {
	known := len(db.d.Migrations)
	if have > known {
		return fmt.Errorf("%w: database at version %d, this binary knows up to %d",
			store.ErrSchemaTooNew, have, known)
	}
	if have == known {
		return nil
	}
	for i := have; i < known; i++ {
		if err := db.d.Migrations[i](ctx, tx); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	_, err := tx.ExecContext(ctx, updateSchemaVersion, known)
	return err
}

// schemaVersion reads the version, creating the row for a new database.
func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, selectSchemaVersion).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, insertSchemaVersion)
		return 0, err
	}
	return v, err
}
