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

// writeNow writes what the socket takes of b at once, without waiting for
// room: (0, EAGAIN) when its buffer is full.
func writeNow(rc syscall.RawConn, b []byte) (int, error) {
	return withoutWaiting(rc.Write, syscall.Write, b)
}

// readNow reads what the socket holds into b without waiting: (0, EAGAIN)
// when it holds nothing, (0, nil) at its end.
func readNow(rc syscall.RawConn, b []byte) (int, error) {
	return withoutWaiting(rc.Read, syscall.Read, b)
}

// withoutWaiting runs one read or write system call on the socket through
// its RawConn (which holds the socket open meanwhile), retrying only on
// EINTR and never waiting for the poller.
func withoutWaiting(access func(func(fd uintptr) bool) error, call func(fd int, b []byte) (int, error), b []byte) (int, error) {
	var (
		n   int
		err error
	)
	rerr := access(func(fd uintptr) bool {
		for {
			n, err = call(int(fd), b)
			if err != syscall.EINTR {
				return true // never wait
			}
		}
	})
	if rerr != nil {
		return 0, rerr
	}
	return max(n, 0), err
}

// canAwait tells whether awaitReadable really waits here.
const canAwait = true
