package apns

import "time"

// Observer receives the client's events, for metrics. Methods are called
// synchronously on the goroutine doing the work (sometimes the HTTP/2 read
// loop), so they must be quick, must not block and must not call back into
// the Client. Embed NopObserver to implement only some of them.
type Observer interface {
	// ConnOpened: a connection finished its TLS and HTTP/2 handshakes.
	ConnOpened(ConnEvent)
	// ConnClosed: an open connection closed; Err says why when known.
	ConnClosed(ConnEvent)
	// DialFailed: a connection could not be opened; Err says why.
	DialFailed(ConnEvent)
	// JWTIssued: a provider token was signed for a connection.
	JWTIssued(ConnEvent)
	// RequestDone: one HTTP request to APNs ended, answered or not.
	RequestDone(RequestEvent)
}

// ConnEvent identifies the pool a connection belongs to.
type ConnEvent struct {
	CredentialID int64
	Environment  string
	Host         string
	Err          error
}

// RequestEvent is one request to APNs. Status is 0 when there was no answer
// (Err is set then).
type RequestEvent struct {
	CredentialID int64
	Environment  string
	Host         string
	Status       int
	Reason       string
	Latency      time.Duration
	Err          error
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) ConnOpened(ConnEvent)     {}
func (NopObserver) ConnClosed(ConnEvent)     {}
func (NopObserver) DialFailed(ConnEvent)     {}
func (NopObserver) JWTIssued(ConnEvent)      {}
func (NopObserver) RequestDone(RequestEvent) {}
