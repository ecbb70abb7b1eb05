package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps the hot write statements prepared on the writer pool,
// so SQLite does not parse and plan them again for every delivery.
// Statements are prepared lazily, on first use, and *sql.Stmt is safe for
// concurrent use: database/sql prepares it again on any other connection
// of the pool the first time it runs there.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns the writer's cached statement for query, preparing it
// on first use. Call it before beginning the transaction that uses it:
// SQLite's writer pool has one connection, which the transaction holds.
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.stmts.get(ctx, db.w, query)
}

// preparedRead is prepared for the reader pool, for the reads every
// request or call makes (an app, a user's registrations): parsing them
// again each time cost more than running them.
func (db *DB) preparedRead(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.rstmts.get(ctx, db.r, query)
}

func (c *stmtCache) get(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s, nil
	}
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = s
	return s, nil
}

// closeStmts closes every cached statement.
func (db *DB) closeStmts() error {
	return errors.Join(db.stmts.close(), db.rstmts.close())
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, s := range c.m {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}
