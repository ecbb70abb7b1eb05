//go:build !linux

package wsconn

import "errors"

// Waiter is only implemented on Linux (epoll); elsewhere AwaitFunc waits
// on a goroutine per connection.
type Waiter struct{}

// NewWaiter fails here: pass a nil Waiter to AwaitFunc.
func NewWaiter() (*Waiter, error) { return nil, errors.ErrUnsupported }

func (w *Waiter) arm(*Conn) bool    { return false }
func (w *Waiter) disarm(*Conn) bool { return false }

// Close does nothing.
func (w *Waiter) Close() error { return nil }
