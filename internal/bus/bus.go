// Package bus delivers messages to the live sessions of a user and knows
// which of a user's devices are connected and in the foreground. This is
// the in-process hub of a single ringd; a clustered ringd would put the
// same interface over NATS.
package bus

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
)

// App states a session reports.
const (
	Foreground = "foreground"
	Background = "background"
)

// Message kinds.
const (
	KindEvent     = "event"     // a call event: Payload is the event JSON
	KindKick      = "kick"      // the session must end: another login took over
	KindReconnect = "reconnect" // the server is draining: reconnect elsewhere
)

// Message is one thing to send to sessions of a user.
type Message struct {
	Kind    string
	Payload json.RawMessage
	// OnlyDevice, when set, delivers to that device's sessions only;
	// ExceptDevice skips that device's sessions.
	OnlyDevice   string
	ExceptDevice string
}

// SessionBuffer is how many messages a session may fall behind before it
// is dropped; the client then reconnects and resynchronises.
const SessionBuffer = 256

// Subscription is one live session of a device.
type Subscription struct {
	ID       uint64
	SDKAppID int64
	UserID   string
	DeviceID string
	c        chan Message
	deliver  func(Message) bool // SubscribeFunc's; then c and dropped are nil
	state    atomic.Value       // string
	dropped  chan struct{}
	dropOnce sync.Once
}

// C delivers the session's messages in publish order.
func (s *Subscription) C() <-chan Message { return s.c }

// Dropped is closed when the session fell too far behind and lost messages.
func (s *Subscription) Dropped() <-chan struct{} { return s.dropped }

// State is the app state the session last reported.
func (s *Subscription) State() string { return s.state.Load().(string) }

type userKey struct {
	app  int64
	user string
}

// Hub is the in-process bus.
type Hub struct {
	mu     sync.RWMutex
	users  map[userKey][]*Subscription // a user's sessions are few: a slice costs a word each, a map ~250 bytes
	nextID atomic.Uint64
	count  atomic.Int64
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{users: map[userKey][]*Subscription{}} }

// Subscribe registers a session of a device in the given app state.
func (h *Hub) Subscribe(sdkAppID int64, userID, deviceID, state string) *Subscription {
	s := &Subscription{
		ID: h.nextID.Add(1), SDKAppID: sdkAppID, UserID: userID, DeviceID: deviceID,
		c: make(chan Message, SessionBuffer), dropped: make(chan struct{}),
	}
	s.state.Store(normalState(state))
	h.add(s)
	return s
}

// SubscribeFunc is Subscribe for a session that queues its own messages:
// Publish and Broadcast call deliver, in publish order, on the publisher's
// goroutine and under the hub's read lock, so deliver must not block. It
// returns false when the session has fallen too far behind and refuses
// the message (the session then closes itself, as Dropped would tell it).
// The subscription holds no buffer: an idle session of the gateway costs
// a few bytes here instead of SessionBuffer messages (18 KiB).
func (h *Hub) SubscribeFunc(sdkAppID int64, userID, deviceID, state string, deliver func(Message) bool) *Subscription {
	s := &Subscription{ID: h.nextID.Add(1), SDKAppID: sdkAppID, UserID: userID, DeviceID: deviceID, deliver: deliver}
	s.state.Store(normalState(state))
	h.add(s)
	return s
}

func (h *Hub) add(s *Subscription) {
	k := userKey{s.SDKAppID, s.UserID}
	h.mu.Lock()
	h.users[k] = append(h.users[k], s)
	h.mu.Unlock()
	h.count.Add(1)
}

// offer hands m to s without blocking; false: s is behind and lost it.
func (s *Subscription) offer(m Message) bool {
	if s.deliver != nil {
		return s.deliver(m)
	}
	select {
	case s.c <- m:
		return true
	default:
		s.dropOnce.Do(func() { close(s.dropped) })
		return false
	}
}

// Unsubscribe removes a session; it is safe to call twice.
func (h *Hub) Unsubscribe(s *Subscription) {
	k := userKey{s.SDKAppID, s.UserID}
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.users[k]
	i := slices.Index(subs, s)
	if i < 0 {
		return
	}
	if subs = slices.Delete(subs, i, i+1); len(subs) == 0 {
		delete(h.users, k)
	} else {
		h.users[k] = subs
	}
	h.count.Add(-1)
}

// SetState records the app state a session reported.
func (h *Hub) SetState(s *Subscription, state string) { s.state.Store(normalState(state)) }

func normalState(state string) string {
	if state == Background {
		return Background
	}
	return Foreground
}

// Publish delivers m to the matching sessions of the user without
// blocking: a session whose buffer is full is dropped (its Dropped channel
// closes). It returns how many sessions got the message.
func (h *Hub) Publish(sdkAppID int64, userID string, m Message) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, s := range h.users[userKey{sdkAppID, userID}] {
		if (m.OnlyDevice != "" && s.DeviceID != m.OnlyDevice) || (m.ExceptDevice != "" && s.DeviceID == m.ExceptDevice) {
			continue
		}
		if s.offer(m) {
			n++
		}
	}
	return n
}

// Device is one connected device of a user.
type Device struct {
	DeviceID   string
	Foreground bool // at least one session of the device is in the foreground
	Sessions   int
}

// Devices lists the user's connected devices.
func (h *Hub) Devices(sdkAppID int64, userID string) []Device {
	h.mu.RLock()
	defer h.mu.RUnlock()
	index := map[string]int{}
	var out []Device
	for _, s := range h.users[userKey{sdkAppID, userID}] {
		i, ok := index[s.DeviceID]
		if !ok {
			i = len(out)
			index[s.DeviceID] = i
			out = append(out, Device{DeviceID: s.DeviceID})
		}
		out[i].Sessions++
		out[i].Foreground = out[i].Foreground || s.State() == Foreground
	}
	return out
}

// Sessions lists the user's sessions (for login policy: kicking others).
func (h *Hub) Sessions(sdkAppID int64, userID string) []*Subscription {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.users[userKey{sdkAppID, userID}])
}

// Count is the number of live sessions.
func (h *Hub) Count() int { return int(h.count.Load()) }

// Broadcast sends m to every session (lame-duck reconnect hints).
func (h *Hub) Broadcast(m Message) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, subs := range h.users {
		for _, s := range subs {
			s.offer(m)
		}
	}
}
