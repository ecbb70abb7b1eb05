//go:build !(linux || darwin)

package wsconn

import (
	"errors"
	"syscall"
)

// awaitReadable cannot peek at a socket here: it returns at once and the
// reader waits inside its read.
func awaitReadable(syscall.RawConn) error { return nil }

// writeNow cannot write without waiting here.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }

// canAwait tells whether awaitReadable really waits here.
const canAwait = false
