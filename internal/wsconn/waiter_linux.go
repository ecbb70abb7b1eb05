package wsconn

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Waiter waits for many connections to become readable with one epoll
// instance and one goroutine, so that an idle connection has no goroutine
// of its own: a parked goroutine costs at least 2.5 KiB (its stack and its
// descriptor), an entry here a few dozen bytes.
type Waiter struct {
	epfd int
	wake [2]int // a pipe whose read end in the epoll set stops the loop

	mu     sync.Mutex
	waits  map[uint64]*Conn // armed connections by wait ID
	nextID uint64
	closed bool
	done   chan struct{} // closed when the loop has exited

	closeOnce sync.Once
}

// wakeID is the wake pipe's ID in the epoll set; waits count from 1.
const wakeID = 0

// NewWaiter starts a Waiter.
func NewWaiter() (*Waiter, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &Waiter{epfd: epfd, waits: map[uint64]*Conn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(w.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	setEventID(&ev, wakeID)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	go w.loop()
	return w, nil
}

func (w *Waiter) closeFDs() {
	_ = syscall.Close(w.epfd)
	_ = syscall.Close(w.wake[0])
	_ = syscall.Close(w.wake[1])
}

// epoll_event's data is a union of 8 bytes; syscall.EpollEvent names its
// halves Fd and Pad.
func setEventID(ev *syscall.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// arm registers c to fire once its socket is readable (level-triggered:
// bytes that arrived before the call count). false: c cannot be waited on
// here (closed, or its socket would not take it) and the caller waits on
// a goroutine instead.
func (w *Waiter) arm(c *Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || c.closed.Load() {
		return false
	}
	w.nextID++
	id := w.nextID
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	setEventID(&ev, id)
	op := syscall.EPOLL_CTL_MOD
	if !c.inEpoll {
		op = syscall.EPOLL_CTL_ADD
	}
	var ctlErr error
	// Control holds the socket open, so its number cannot be closed and
	// reused by another connection while it is registered.
	if err := c.rc.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(w.epfd, op, int(fd), &ev)
		if op == syscall.EPOLL_CTL_MOD && errors.Is(ctlErr, syscall.ENOENT) {
			ctlErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	}); err != nil || ctlErr != nil {
		return false
	}
	c.inEpoll = true
	c.waitID = id
	w.waits[id] = c
	return true
}

// disarm takes c's pending wait back; true: it was pending, and the
// caller runs its callback.
func (w *Waiter) disarm(c *Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.waitID == 0 || w.waits[c.waitID] != c {
		return false
	}
	delete(w.waits, c.waitID)
	c.waitID = 0
	return true
}

func (w *Waiter) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 256)
	var fire []*Conn
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		stop := err != nil
		w.mu.Lock()
		for i := range events[:max(n, 0)] {
			id := eventID(&events[i])
			if id == wakeID {
				stop = true
				continue
			}
			// A stale ID (the wait was taken back by a close) is skipped.
			if c, ok := w.waits[id]; ok {
				delete(w.waits, id)
				c.waitID = 0
				fire = append(fire, c)
			}
		}
		if stop {
			w.closed = true
			for id, c := range w.waits {
				delete(w.waits, id)
				c.waitID = 0
				fire = append(fire, c)
			}
		}
		w.mu.Unlock()
		for i, c := range fire {
			if stop || !w.pongsOnly(c) {
				go c.fire()
			}
			fire[i] = nil
		}
		fire = fire[:0]
		if stop {
			return
		}
	}
}

// Close stops the Waiter. Connections still waiting have their callbacks
// run (their next read waits inside); later waits use goroutines.
func (w *Waiter) Close() error {
	w.closeOnce.Do(func() {
		_, _ = syscall.Write(w.wake[1], []byte{1})
		<-w.done
		w.closeFDs()
	})
	return nil
}

// pongsOnly reads, without waiting, what a readable connection's socket
// holds. When that is only whole pongs (the answers to the heartbeat's
// pings, most of what idle connections send), it passes them to OnControl
// and arms the connection again, here: no goroutine is started and
// scheduled for them, which was a third of a ping's cost. Anything else is
// kept for the callback's read (true: handled, false: run the callback).
func (w *Waiter) pongsOnly(c *Conn) bool {
	var buf [64]byte
	n, err := readNow(c.rc, buf[:])
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return w.arm(c) // woken for nothing
	case err != nil || n == 0:
		return false // the callback's read meets the end
	case n < len(buf) && onlyPongs(buf[:n]):
		for range countFrames(buf[:n]) {
			if c.onControl != nil {
				c.onControl()
			}
		}
		return w.arm(c)
	}
	c.early = append(c.early, buf[:n]...)
	return false
}
