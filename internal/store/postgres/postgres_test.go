package postgres_test

import (
	"database/sql"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/postgres"
	"github.com/ringd/ringd/internal/store/storetest"
)

const dsnEnv = "RINGD_TEST_POSTGRES"

// freshSchema skips the test unless RINGD_TEST_POSTGRES names a
// database, and returns a DSN for a new schema in it.
func freshSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skip(dsnEnv + " is not set; set it to a PostgreSQL DSN to run these tests, " +
			"e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return storetest.FreshPostgresDSN(t, dsn)
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, freshSchema(t)) })
}

// Two ringd processes starting at once on an empty database both come
// up: the advisory lock makes the second wait for the first's migration.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	dsn := freshSchema(t)
	s := open(t, dsn)
	if err := s.CreateApp(t.Context(), &store.App{SDKAppID: 1, Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	// Reopening an up-to-date schema is a no-op.
	s = open(t, dsn)
	if _, err := s.App(t.Context(), 1); err != nil {
		t.Fatalf("App after reopen: %v", err)
	}
	_ = s.Close()

	// A newer ringd migrated the database further than this binary knows.
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(t.Context(), "UPDATE schema_version SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), dsn)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a newer schema: %v is also ErrUnavailable", err)
	}
}

func TestUnreachable(t *testing.T) {
	// Port 1 on localhost refuses connections at once.
	_, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: got %v, want ErrUnavailable", err)
	}
}

// A database an older ringd created is migrated, data and all.
func TestUpgrade(t *testing.T) {
	if postgres.SchemaVersion < 2 {
		t.Skip("only one schema version")
	}
	dsn := freshSchema(t)
	storetest.Upgrade(t, func(t *testing.T, n int) store.Store {
		if n == 0 {
			n = postgres.SchemaVersion
		}
		s, err := postgres.OpenVersion(t.Context(), dsn, n)
		if err != nil {
			t.Fatalf("open at version %d: %v", n, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
