// Package gatewaytest holds fakes of what the gateway depends on: a small
// in-memory call service, an authenticator and a login-policy source. The
// gateway's and the Go SDK's tests use them.
package gatewaytest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
)

// FakeCalls is a small in-memory call service: enough state machine to
// exercise the protocol, with records of what the gateway asked.
type FakeCalls struct {
	hub *bus.Hub

	mu           sync.Mutex
	calls        map[string]*calls.Call
	byRequest    map[string]*calls.Call // user/requestID → answer
	actors       []calls.Actor
	sync         []calls.Event
	syncHook     func(sdkAppID int64, user, device string)
	connected    []string // user/device
	disconnected []string
	states       []string // user/device/state
	unbound      []string // user/device
	next         int
}

func NewFakeCalls(hub *bus.Hub) *FakeCalls {
	return &FakeCalls{hub: hub, calls: map[string]*calls.Call{}, byRequest: map[string]*calls.Call{}}
}

func (f *FakeCalls) publish(c *calls.Call, typ, user, device, reason string) {
	ev := calls.Event{Type: typ, CallID: c.CallID, Seq: c.Seq, At: time.Now().UTC(), User: user, DeviceID: device, Reason: reason, Call: c}
	b, _ := json.Marshal(ev)
	users := []string{c.Caller}
	for _, inv := range c.Invitees {
		users = append(users, inv.User)
	}
	for _, u := range users {
		f.hub.Publish(c.SDKAppID, u, bus.Message{Kind: bus.KindEvent, Payload: b})
	}
}

// idem answers a repeated request ID with the first answer.
func (f *FakeCalls) idem(a calls.Actor, do func() (*calls.Call, error)) (*calls.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, a)
	key := a.UserID + "/" + a.RequestID
	if c, ok := f.byRequest[key]; ok {
		cp := *c
		return &cp, nil
	}
	c, err := do()
	if err != nil {
		return nil, err
	}
	f.byRequest[key] = c
	cp := *c
	return &cp, nil
}

func (f *FakeCalls) get(a calls.Actor, id string) (*calls.Call, error) {
	c, ok := f.calls[id]
	if !ok || c.SDKAppID != a.SDKAppID {
		return nil, &calls.Error{Code: calls.CodeCallNotFound, Message: "no call " + id, Status: 404}
	}
	return c, nil
}

func (f *FakeCalls) Invite(_ context.Context, a calls.Actor, req calls.InviteRequest) (*calls.Call, error) {
	return f.idem(a, func() (*calls.Call, error) {
		if len(req.Invitees) == 0 {
			return nil, &calls.Error{Code: calls.CodeBadInvitees, Message: "no invitees", Status: 400}
		}
		f.next++
		c := &calls.Call{CallID: "call-" + strconv.Itoa(f.next), SDKAppID: a.SDKAppID, Caller: a.UserID, Media: req.Media,
			State: calls.StateRinging, CreatedAt: time.Now().UTC(), Seq: 1}
		for _, u := range req.Invitees {
			c.Invitees = append(c.Invitees, calls.Invitee{User: u, Outcome: calls.OutcomeRinging})
		}
		f.calls[c.CallID] = c
		f.publish(c, calls.EventInvited, a.UserID, a.DeviceID, "")
		return c, nil
	})
}

func (f *FakeCalls) change(a calls.Actor, id string, do func(c *calls.Call) (string, string, error)) (*calls.Call, error) {
	return f.idem(a, func() (*calls.Call, error) {
		c, err := f.get(a, id)
		if err != nil {
			return nil, err
		}
		typ, reason, err := do(c)
		if err != nil {
			return nil, err
		}
		c.Seq++
		f.publish(c, typ, a.UserID, a.DeviceID, reason)
		return c, nil
	})
}

func (f *FakeCalls) Accept(_ context.Context, a calls.Actor, id string) (*calls.Call, error) {
	return f.change(a, id, func(c *calls.Call) (string, string, error) {
		if c.State != calls.StateRinging {
			return "", "", &calls.Error{Code: calls.CodeNotRinging, Message: "not ringing", Status: 409}
		}
		c.State = calls.StateAnswered
		return calls.EventAccepted, "", nil
	})
}

func (f *FakeCalls) Reject(_ context.Context, a calls.Actor, id, reason string) (*calls.Call, error) {
	return f.change(a, id, func(c *calls.Call) (string, string, error) {
		c.State, c.EndReason = calls.StateEnded, reason
		return calls.EventRejected, reason, nil
	})
}

func (f *FakeCalls) Cancel(_ context.Context, a calls.Actor, id string) (*calls.Call, error) {
	return f.change(a, id, func(c *calls.Call) (string, string, error) {
		if c.Caller != a.UserID {
			return "", "", &calls.Error{Code: calls.CodeNotCaller, Message: "only the caller cancels", Status: 403}
		}
		c.State, c.EndReason = calls.StateEnded, calls.EndCancelled
		return calls.EventCancelled, "", nil
	})
}

func (f *FakeCalls) Hangup(_ context.Context, a calls.Actor, id string) (*calls.Call, error) {
	return f.change(a, id, func(c *calls.Call) (string, string, error) {
		c.State, c.EndReason = calls.StateEnded, calls.EndHangup
		return calls.EventEnded, calls.EndHangup, nil
	})
}

func (f *FakeCalls) InviteMore(_ context.Context, a calls.Actor, id string, invitees []string) (*calls.Call, error) {
	return f.change(a, id, func(c *calls.Call) (string, string, error) {
		if c.GroupID == "" {
			return "", "", &calls.Error{Code: calls.CodeNotGroupCall, Message: "1:1 call", Status: 409}
		}
		return calls.EventInviteesAdded, "", nil
	})
}

func (f *FakeCalls) GetForUser(_ context.Context, sdkAppID int64, user, id string) (*calls.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(calls.Actor{SDKAppID: sdkAppID, UserID: user}, id)
	if err != nil {
		return nil, err
	}
	cp := *c
	return &cp, nil
}

func (f *FakeCalls) DeviceConnected(_ context.Context, sdkAppID int64, user, device string) ([]calls.Event, error) {
	f.mu.Lock()
	f.connected = append(f.connected, user+"/"+device)
	evs, hook := f.sync, f.syncHook
	f.mu.Unlock()
	if hook != nil {
		hook(sdkAppID, user, device)
	}
	return evs, nil
}

func (f *FakeCalls) DeviceDisconnected(_ context.Context, _ int64, user, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = append(f.disconnected, user+"/"+device)
	return nil
}

func (f *FakeCalls) DeviceStateChanged(_ context.Context, _ int64, user, device, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, user+"/"+device+"/"+state)
	return nil
}

func (f *FakeCalls) UnbindDevice(_ context.Context, _ int64, user, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbound = append(f.unbound, user+"/"+device)
	return nil
}

func (f *FakeCalls) list(p *[]string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), *p...)
}

// SetSync sets the events DeviceConnected returns and a hook it runs
// (nil for none), e.g. to publish live events while a device syncs.
func (f *FakeCalls) SetSync(evs []calls.Event, hook func(sdkAppID int64, user, device string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sync, f.syncHook = evs, hook
}

// Connected lists "user/device" per DeviceConnected call.
func (f *FakeCalls) Connected() []string { return f.list(&f.connected) }

// Disconnected lists "user/device" per DeviceDisconnected call.
func (f *FakeCalls) Disconnected() []string { return f.list(&f.disconnected) }

// States lists "user/device/state" per DeviceStateChanged call.
func (f *FakeCalls) States() []string { return f.list(&f.states) }

// Unbound lists "user/device" per UnbindDevice call.
func (f *FakeCalls) Unbound() []string { return f.list(&f.unbound) }

// Actors lists the actors of every state-changing request.
func (f *FakeCalls) Actors() []calls.Actor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]calls.Actor(nil), f.actors...)
}

// CodedError is an authentication error with an HTTP status and code.
type CodedError struct {
	status int
	code   string
}

// Error implements error.
func (e CodedError) Error() string { return e.code }

// HTTPStatus is the status of the refused connection.
func (e CodedError) HTTPStatus() int { return e.status }

// ErrorCode is the code of the refused connection.
func (e CodedError) ErrorCode() string { return e.code }

// Auth accepts "<sdkappid>:<user>" as a UserSig.
type Auth struct{}

// AuthenticateUserSig implements gateway.Authenticator.
func (Auth) AuthenticateUserSig(_ context.Context, sig string) (int64, string, error) {
	switch sig {
	case "expired":
		return 0, "", CodedError{http.StatusUnauthorized, "usersig_expired"}
	case "boom":
		return 0, "", errors.New("database down")
	}
	app, user, ok := strings.Cut(sig, ":")
	id, err := strconv.ParseInt(app, 10, 64)
	if !ok || err != nil || user == "" {
		return 0, "", CodedError{http.StatusUnauthorized, "usersig_malformed"}
	}
	return id, user, nil
}

// Policy: app 2 is single-login, every other app multi.
type Policy struct{}

// LoginPolicy implements gateway.PolicySource.
func (Policy) LoginPolicy(_ context.Context, sdkAppID int64) (string, error) {
	if sdkAppID == 2 {
		return "single", nil
	}
	if sdkAppID == 3 {
		return "", errors.New("settings unavailable")
	}
	return "multi", nil
}
