//go:build !unix

package server

import "errors"

// ErrDataDirBusy means another process holds the data directory's lock.
var ErrDataDirBusy = errors.New("the data directory is in use by another ringd process")

// LockDataDir does nothing where flock is missing: stop every server
// before `ringd rotate-master-key` (docs/security.md).
func LockDataDir(string, bool) (func() error, error) { return func() error { return nil }, nil }
