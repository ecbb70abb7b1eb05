//go:build linux || darwin

package wsconn

import "syscall"

// awaitReadable returns when the socket has something to read (or was
// closed, or failed: the next read tells), without reading it. The socket
// is peeked at first, since readiness signalled before the call is
// forgotten; after the wait, the wake-up itself says it is readable.
func awaitReadable(rc syscall.RawConn) error {
	var b [1]byte
	woken := false
	return rc.Read(func(fd uintptr) bool {
		if woken {
			return true
		}
		woken = true
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err != syscall.EINTR {
				return err != syscall.EAGAIN // false: wait until readable
			}
		}
	})
}
