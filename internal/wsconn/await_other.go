//go:build !(linux || darwin)

package wsconn

import "syscall"

// awaitReadable cannot peek at a socket here: it returns at once and the
// reader waits inside its read.
func awaitReadable(syscall.RawConn) error { return nil }
