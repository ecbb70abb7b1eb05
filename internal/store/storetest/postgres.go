package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	// pgx itself, not its database/sql driver: that pulls in pgxpool, and
	// this package must build wherever the SQLite tests do.
	"github.com/jackc/pgx/v5"
)

// FreshPostgresDSN creates a schema with a random name in the database
// dsn names, drops it when the test ends, and returns dsn with its
// search_path set to the schema, so that tests and concurrent runs never
// see each other's tables. Callers decide whether to run at all (usually
// on RINGD_TEST_POSTGRES).
func FreshPostgresDSN(t testing.TB, dsn string) string {
	t.Helper()
	schema := "ringd_test_" + strings.ToLower(rand.Text()[:12])
	if err := execPostgres(t.Context(), dsn, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	// Cleanups run last-in first-out, so stores opened on the DSN after
	// this call are closed before the schema is dropped. t.Context is
	// already cancelled by then.
	t.Cleanup(func() {
		if err := execPostgres(context.Background(), dsn, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

// withSearchPath adds search_path to a URL or key=value DSN; pgx passes it
// to the server as a run-time parameter.
func withSearchPath(t testing.TB, dsn, schema string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func execPostgres(ctx context.Context, dsn, query string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, query)
	return err
}
