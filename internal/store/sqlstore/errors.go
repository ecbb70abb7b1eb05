package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/ringd/ringd/internal/store"
)

// fail wraps err with the operation and, where it can tell, one of the
// store's sentinel errors, keeping the driver error in the chain too.
func (db *DB) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := db.sentinel(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%s %s: %w: %w", db.d.Name, op, s, err)
	}
	return fmt.Errorf("%s %s: %w", db.d.Name, op, err)
}

func (db *DB) sentinel(err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	// database/sql's "database is closed" error is unexported, so the
	// store remembers that it was closed instead.
	case db.closed.Load(), errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		return store.ErrUnavailable
	case db.d.Classify != nil:
		return db.d.Classify(err)
	}
	return nil
}
