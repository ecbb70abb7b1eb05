package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// openWithCheckpoints opens a store whose background checkpoints run every
// given interval (an hour: only when the test calls step).
func openWithCheckpoints(t *testing.T, every time.Duration) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ringd.db")
	s, err := open(t.Context(), path, dialect, func(o *options) { o.checkpointEvery = every })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateApp(t.Context(), &store.App{SDKAppID: 1, Name: "a", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// writePushes writes n pushes, one transaction each.
func writePushes(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		p := &store.Push{ID: id, SDKAppID: 1, UserID: "u", Request: []byte(`{}`), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		d := &store.Delivery{Token: id, CertificateID: 1, Environment: store.EnvProduction, Kind: store.KindAlert,
			State: store.DeliveryPending, UpdatedAt: time.Now()}
		if err := s.CreatePush(t.Context(), p, []*store.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
}

func walBytes(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// walFrames checkpoints from a connection of its own and says how many
// frames the WAL holds.
func walFrames(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?"+checkpointParams)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var busy, frames, copied int
	if err := db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	return frames
}

// One background step copies the WAL back, so that the next transaction
// starts the WAL over instead of growing it until a commit checkpoints.
func TestCheckpointLetsTheWALRestart(t *testing.T) {
	s, path := openWithCheckpoints(t, time.Hour)
	writePushes(t, s, "a", 200)
	before := walBytes(t, path) / (4096 + 24)
	if before < 400 {
		t.Fatalf("the WAL holds %d frames after 200 transactions; the test needs more", before)
	}
	if err := s.cp.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	writePushes(t, s, "b", 1)
	if n := walFrames(t, path); n >= 50 {
		t.Errorf("the WAL holds %d frames after the step and one transaction (%d before): it did not restart", n, before)
	}
}

// A step finds an unchanged WAL by its size and time and leaves it alone;
// a write since the last step makes the next one copy it back again.
func TestCheckpointSkipsAnUnchangedWAL(t *testing.T) {
	s, path := openWithCheckpoints(t, time.Hour)
	writePushes(t, s, "a", 200)
	// A WAL written within idleAfter is never noted idle: a write in the
	// same tick of the file system's clock would not show.
	if err := s.cp.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.cp.idleWAL != nil {
		t.Fatal("a WAL written just now was noted idle")
	}
	s.cp.idleAfter = 0
	writePushes(t, s, "a2", 1)
	if err := s.cp.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	idle := s.cp.idleWAL
	if idle == nil {
		t.Fatal("a step that copied everything did not note the WAL as idle")
	}
	if err := s.cp.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.cp.idleWAL != idle {
		t.Fatal("a step with nothing written since the last one checkpointed again")
	}
	writePushes(t, s, "b", 200)
	if err := s.cp.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.cp.idleWAL == idle {
		t.Fatal("a step after writes kept the old note of the WAL")
	}
	writePushes(t, s, "c", 1)
	if n := walFrames(t, path); n >= 50 {
		t.Errorf("the WAL holds %d frames after the step and one transaction: the step after the writes did not copy it back", n)
	}
}
