package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// SQLite's automatic checkpoint runs inside the commit that takes the WAL
// past 1000 pages: it copies some 4 MB back into the database file and
// flushes it, and every writer queued behind that commit waits for the
// flush. That flush set the tail of a call's latency (docs/performance.md:
// with the flush off, invite → APNs request p99 fell from ~40 to 5–14 ms).
//
// So a connection of ringd's own copies the WAL back every
// checkpointEvery with a passive checkpoint, beside the writer and
// flushing on its own time, and the commit's automatic checkpoint waits
// for 10000 pages, by when nearly everything has been copied: it has
// little left to copy and flush, and the WAL then starts over. When a
// background step leaves only a little, the writer's connection copies it
// between two transactions, so that a WAL written slowly starts over
// without waiting for those 10000 pages.
//
// A checkpoint from the other connection alone does not do: under steady
// writes it never catches up, and a WAL that is never wholly copied back
// cannot start over; it grew without bound when tried.
//
// Each step stops ringd for as long as it copies and flushes: SQLite here
// is Go code, so its system calls keep the goroutine's P, and pinned to
// one core that is the process's only one (docs/performance.md, "what
// holds the core"). Steps every 50 ms copy half as much each as steps
// every 100 ms: call-offline's p99 fell from 7.6 to 5.0 ms for 1.5% more
// CPU (7 alternated pairs), and call-online's by about a third. Every
// 10 ms was worse again at call-online, as every 300 ms or 1 s was.
const (
	checkpointEvery = 50 * time.Millisecond
	// checkpointFinishBelow is how many frames a background step may leave
	// for the writer's connection to copy.
	checkpointFinishBelow = 256
	// autoCheckpointPages is when a commit checkpoints (SQLite's default is
	// 1000): a WAL of about 40 MB at most.
	autoCheckpointPages = "10000"
)

// checkpointer runs the two steps until close.
type checkpointer struct {
	own, writer *sql.DB
	passive     *sql.Stmt // the checkpoint on own, prepared once
	log         *slog.Logger
	stop        context.CancelFunc
	done        sync.WaitGroup

	// The WAL file as the last step that left nothing found it: while it
	// stays so, nothing was written and a step has nothing to do. An idle
	// ringd spent ~1% of a core on checkpoints of an unchanged WAL.
	walPath   string
	idleWAL   os.FileInfo
	idleAfter time.Duration // how long ago the WAL's last write must be for it to be noted idle
}

func startCheckpointer(path string, writer *sql.DB, log *slog.Logger, every time.Duration) (*checkpointer, error) {
	own, err := sql.Open("sqlite", path+"?"+checkpointParams)
	if err != nil {
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	own.SetMaxOpenConns(1)
	own.SetMaxIdleConns(1)
	passive, err := own.Prepare(passiveCheckpoint)
	if err != nil {
		_ = own.Close()
		return nil, fmt.Errorf("sqlite prepare the checkpoint: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{own: own, writer: writer, passive: passive, log: log, stop: cancel, walPath: path + "-wal", idleAfter: idleAfter}
	c.done.Go(func() { c.run(ctx, every) })
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.step(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.log.Warn("sqlite: background checkpoint failed; commits checkpoint instead", "err", err)
			failing = true
		case err == nil && failing:
			c.log.Info("sqlite: background checkpoint works again")
			failing = false
		}
	}
}

// step copies what it can beside the writer, then lets the writer's
// connection finish when little is left. It does nothing while the WAL
// file is as the last step that left nothing found it.
func (c *checkpointer) step(ctx context.Context) error {
	wal, statErr := os.Stat(c.walPath)
	if statErr == nil && c.idleWAL != nil && wal.Size() == c.idleWAL.Size() && wal.ModTime().Equal(c.idleWAL.ModTime()) {
		return nil
	}
	c.idleWAL = nil
	left, err := checkpoint(c.passive.QueryRowContext(ctx))
	if err == nil && left > 0 && left < checkpointFinishBelow {
		left, err = checkpoint(c.writer.QueryRowContext(ctx, passiveCheckpoint))
	}
	// The WAL is noted as it was before this step, so a write since then
	// shows; only when its last write is older than the file system's
	// clock could blur (a write in the same tick would keep the time).
	if err == nil && left == 0 && statErr == nil && time.Since(wal.ModTime()) > c.idleAfter {
		c.idleWAL = wal
	}
	return err
}

// idleAfter is how long ago the WAL's last write must be before a step
// notes it as idle: longer than any file system's time granularity.
const idleAfter = time.Second

const passiveCheckpoint = "PRAGMA wal_checkpoint(PASSIVE)"

// checkpoint scans the result of a passive checkpoint and returns how many
// frames of the WAL it left uncopied. A checkpoint that could not run
// (another one was running: busy, and -1 frames) left an unknown number,
// counted as checkpointFinishBelow so that nothing is taken as done.
func checkpoint(row *sql.Row) (int, error) {
	var busy, frames, copied int
	err := row.Scan(&busy, &frames, &copied)
	if err != nil {
		return 0, fmt.Errorf("sqlite checkpoint: %w", err)
	}
	if busy != 0 || frames < 0 || copied < 0 {
		return checkpointFinishBelow, nil
	}
	return max(frames-copied, 0), nil
}

func (c *checkpointer) close() error {
	c.stop()
	c.done.Wait()
	return errors.Join(c.passive.Close(), c.own.Close())
}
