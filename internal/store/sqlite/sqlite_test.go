package sqlite_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
	"github.com/ringd/ringd/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ringd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, openTemp)
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(t.Context(), &store.App{SDKAppID: 1, Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.App(t.Context(), 1); err != nil {
		t.Errorf("App after reopen: %v", err)
	}
}

// Two processes starting at once on a new file both come up.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringd.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), path)
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

// openMigrated makes a database file migrated by this binary, closes the
// store and opens the file raw, closed when t ends.
func openMigrated(t *testing.T) (path string, raw *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "ringd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if raw, err = sql.Open("sqlite", path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return path, raw
}

func TestSchemaTooNew(t *testing.T) {
	path, raw := openMigrated(t)
	// A newer ringd migrated the file further than this binary knows.
	_, err := raw.ExecContext(t.Context(), "UPDATE schema_version SET version = version + 1")
	_ = raw.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = sqlite.Open(t.Context(), path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a newer schema: %v is also ErrUnavailable", err)
	}
}

func TestOpenRejectsNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

// A file an older ringd created is migrated, data and all.
func TestUpgrade(t *testing.T) {
	if sqlite.SchemaVersion < 2 {
		t.Skip("only one schema version")
	}
	path := filepath.Join(t.TempDir(), "ringd.db")
	storetest.Upgrade(t, func(t *testing.T, n int) store.Store {
		if n == 0 {
			n = sqlite.SchemaVersion
		}
		s, err := sqlite.OpenVersion(t.Context(), path, n)
		if err != nil {
			t.Fatalf("open at version %d: %v", n, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// The store sets new delivery IDs from the last inserted one
// (sqlstore.Dialect.ConsecutiveIDs), which holds only while deliveries is a
// rowid table whose IDs are AUTOINCREMENT and no trigger inserts rows
// into it or skips any: a migration that changes either must change the
// dialect too.
func TestDeliveriesKeepConsecutiveIDs(t *testing.T) {
	_, raw := openMigrated(t)
	var ddl string
	if err := raw.QueryRowContext(t.Context(), `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ddl, "id              INTEGER PRIMARY KEY AUTOINCREMENT") || strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Errorf("deliveries is no longer a rowid table with AUTOINCREMENT IDs:\n%s", ddl)
	}
	var triggers int
	if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if triggers != 0 {
		t.Errorf("the schema has %d triggers: check that none writes deliveries", triggers)
	}
}
