//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the data directory's lock: every running `ringd serve`
// holds it shared, and `ringd rotate-master-key` takes it exclusively, so
// the key is never changed under a running server on this machine. The
// kernel drops the lock when the process dies, even by SIGKILL.
const lockFile = "ringd.lock"

// ErrDataDirBusy means another process holds the data directory's lock.
var ErrDataDirBusy = errors.New("the data directory is in use by another ringd process")

// LockDataDir takes the data directory's lock without waiting: shared
// for a server, exclusive for maintenance that needs no server running.
// The returned func releases it.
func LockDataDir(dir string, exclusive bool) (func() error, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrDataDirBusy, dir)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return f.Close, nil
}
