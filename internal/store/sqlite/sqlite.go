// Package sqlite is ringd's default store: one SQLite file in the data
// directory, through the pure-Go modernc.org/sqlite driver so that
// CGO_ENABLED=0 builds work on every target.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlstore"
)

// Store is a store.Store over one SQLite database file.
type Store struct {
	*sqlstore.DB
	cp *checkpointer
}

// Close stops the background checkpoints and closes the database.
func (s *Store) Close() error {
	return errors.Join(s.cp.close(), s.DB.Close())
}

var _ store.Store = (*Store)(nil)

// Connection settings. Writes go through one connection that begins its
// transactions IMMEDIATE: they queue in Go rather than race for SQLite's
// write lock, and a transaction that reads before it writes cannot fail
// with SQLITE_BUSY when another process wrote in between; busy_timeout
// covers other processes (ringd migrate, backups). WAL lets the readers
// run beside the writer, and synchronous=NORMAL is durable in WAL mode
// except for the last transactions on power loss. A reader's page cache
// is dropped whenever another connection committed since its last read,
// which under ringd's steady writes is every read: readers keep 512 KiB
// instead of SQLite's 2 MiB, which cost RSS (5 connections) and saved no
// CPU in ringd bench push.
const (
	writerParams = "_txlock=immediate" +
		"&_pragma=busy_timeout(5000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=wal_autocheckpoint(" + autoCheckpointPages + ")" + // checkpoint.go
		"&_pragma=journal_size_limit(67108864)"
	checkpointParams = "_pragma=busy_timeout(5000)"
	readerParams     = "_pragma=busy_timeout(5000)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=query_only(1)" +
		"&_pragma=cache_size(-512)"
)

// Open opens (creating if needed) the database file at path and migrates
// it. path must name a file: an in-memory database would give the writer
// and the readers different databases.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	return open(ctx, path, dialect, opts...)
}

// Option changes how Open sets the store up.
type Option func(*options)

type options struct {
	log             *slog.Logger
	checkpointEvery time.Duration
}

// WithLogger logs what the store does in the background (its checkpoints)
// to log; without it, nothing is logged.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

func open(ctx context.Context, path string, d sqlstore.Dialect, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), checkpointEvery: checkpointEvery}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	db, w, err := openWithRetry(ctx, path, d)
	if err != nil {
		return nil, err
	}
	cp, err := startCheckpointer(path, w, o.log, o.checkpointEvery)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{DB: db, cp: cp}, nil
}

// openBusyFor bounds how long Open waits for another opener of the same
// new database file.
const openBusyFor = 10 * time.Second

// openWithRetry opens and migrates, retrying while the file is busy: the
// first connection switches a new file to WAL, which needs the file to
// itself, and SQLite answers a concurrent opener SQLITE_BUSY at once
// there instead of waiting out busy_timeout.
// It returns the store and its writer pool.
func openWithRetry(ctx context.Context, path string, d sqlstore.Dialect) (*sqlstore.DB, *sql.DB, error) {
	deadline := time.Now().Add(openBusyFor)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		db, w, err := openOnce(ctx, path, d)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return db, w, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

func openOnce(ctx context.Context, path string, d sqlstore.Dialect) (*sqlstore.DB, *sql.DB, error) {
	w, err := sql.Open("sqlite", path+"?"+writerParams)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	r, err := sql.Open("sqlite", path+"?"+readerParams)
	if err != nil {
		_ = w.Close()
		return nil, nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db, err := sqlstore.New(ctx, w, r, d) // closes both pools on error
	return db, w, err
}

func isBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

func checkPath(path string) error {
	switch {
	case path == "", path == ":memory:", strings.HasPrefix(path, "file:"):
		return fmt.Errorf("sqlite open %q: want the path of a database file", path)
	case strings.Contains(path, "?"):
		// The driver reads everything after '?' as its own parameters.
		return fmt.Errorf("sqlite open %q: path must not contain '?'", path)
	}
	return nil
}

var dialect = sqlstore.Dialect{
	Name:            "sqlite",
	Migrations:      migrations,
	ClaimDeliveries: claimDeliveries,
	ClaimWebhooks:   claimWebhooks,
	AnonymousParams: true,
	ConsecutiveIDs:  true,
	Classify:        classify,
}

// The writer's IMMEDIATE transaction holds the write lock for the whole
// statement, so no other claimer can see these rows as free meanwhile.
const claimDeliveries = `UPDATE deliveries SET lease_until = $1
WHERE id IN (
	SELECT id FROM deliveries
	WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
	ORDER BY next_attempt_at, id
	LIMIT $3)
RETURNING ` + sqlstore.DeliveryColumns

const claimWebhooks = `UPDATE webhooks SET lease_until = $1
WHERE id IN (
	SELECT id FROM webhooks
	WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
	ORDER BY next_attempt_at, id
	LIMIT $3)
RETURNING ` + sqlstore.WebhookColumns
