package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Call is a call as ringd reports it (the "call" object of
// docs/protocol.md and of the REST API).
type Call struct {
	CallID     string     `json:"call_id"`
	SDKAppID   int64      `json:"sdkappid"`
	Caller     string     `json:"caller"`
	CallerName string     `json:"caller_name,omitempty"`
	UUID       string     `json:"uuid,omitempty"`    // the UUID to report to CallKit
	Timeout    int        `json:"timeout,omitempty"` // ring timeout in seconds
	GroupID    string     `json:"group_id,omitempty"`
	Media      string     `json:"media"`
	RoomID     string     `json:"room_id,omitempty"`
	Data       string     `json:"data,omitempty"`
	State      string     `json:"state"`                // ringing, answered, ended
	EndReason  string     `json:"end_reason,omitempty"` // cancelled, timeout, declined, busy, hangup, ended_by_server
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	Seq        int64      `json:"seq"`
	CallerLeft bool       `json:"caller_left,omitempty"`
	Invitees   []Invitee  `json:"invitees"`
	PushIDs    []string   `json:"push_ids,omitempty"`
}

// Invitee is one invited user of a call.
type Invitee struct {
	User         string          `json:"user"`
	Outcome      string          `json:"outcome"` // ringing, accepted, declined, busy, timeout, cancelled, left
	InvitedAt    time.Time       `json:"invited_at"`
	RingDeadline time.Time       `json:"ring_deadline"`
	RespondedAt  *time.Time      `json:"responded_at,omitempty"`
	LeftAt       *time.Time      `json:"left_at,omitempty"`
	DeviceID     string          `json:"device_id,omitempty"` // the device that answered
	Devices      []DeviceOutcome `json:"devices,omitempty"`
	Pushes       []PushedDevice  `json:"pushes,omitempty"`
}

// DeviceOutcome is what one device of an invitee saw.
type DeviceOutcome struct {
	DeviceID string `json:"device_id"`
	Outcome  string `json:"outcome"`
}

// PushedDevice is a push sent to ring a device or to tell of a missed call.
type PushedDevice struct {
	PushID string `json:"push_id"`
	Kind   string `json:"kind"` // ring or missed
}

// Ended reports whether the call is over.
func (c *Call) Ended() bool { return c != nil && c.State == "ended" }

// InviteRequest starts a call from a connected device.
type InviteRequest struct {
	Invitees   []string    `json:"invitees"`
	Media      string      `json:"media"`             // audio or video
	Timeout    int         `json:"timeout,omitempty"` // ring timeout in seconds; 0: the app's default
	GroupID    string      `json:"group_id,omitempty"`
	RoomID     string      `json:"room_id,omitempty"`
	Data       string      `json:"data,omitempty"` // at most 4 KiB, for the apps
	CallerName string      `json:"caller_name,omitempty"`
	Push       PushOptions `json:"push,omitzero"`
}

// PushOptions say how the invitation rings devices that are not in the
// foreground; empty fields take the app's settings.
type PushOptions struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Sound string `json:"sound,omitempty"`
	VoIP  *bool  `json:"voip,omitempty"` // false forces alert pushes
}

// Call returns a call the user takes part in (GET /v1/me/calls/{id}):
// what a device woken by a push checks before it shows the call.
func (u *User) Call(ctx context.Context, callID string) (*Call, error) {
	return getCall(ctx, u.c, "/v1/me/calls/"+url.PathEscape(callID))
}

// StartCall is an app server's call request: ring Invitees for Caller.
type StartCall struct {
	Caller   string   `json:"caller"`
	Invitees []string `json:"invitees"`
	Media    string   `json:"media"`             // audio or video
	Timeout  int      `json:"timeout,omitempty"` // seconds; 0: the app's default
	RoomID   string   `json:"room_id,omitempty"`
	Data     string   `json:"data,omitempty"`
	GroupID  string   `json:"group_id,omitempty"`
}

// StartCall starts a call on behalf of req.Caller and returns its ID.
func (a *Admin) StartCall(ctx context.Context, sdkAppID int64, req StartCall) (string, error) {
	var out struct {
		CallID string `json:"call_id"`
	}
	if err := a.c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/apps/%d/calls", sdkAppID), req, &out); err != nil {
		return "", err
	}
	return out.CallID, nil
}

// EndCall ends a call in any state (ringing or answered), as the app
// server; everyone is told call.ended with reason ended_by_server.
func (a *Admin) EndCall(ctx context.Context, sdkAppID int64, callID string) error {
	return a.c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/apps/%d/calls/%s/end", sdkAppID, url.PathEscape(callID)), nil, nil)
}

// CancelCall ends a call that still rings, as its caller would.
func (a *Admin) CancelCall(ctx context.Context, sdkAppID int64, callID string) error {
	return a.c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/apps/%d/calls/%s/cancel", sdkAppID, url.PathEscape(callID)), nil, nil)
}

// Call returns one call of the app.
func (a *Admin) Call(ctx context.Context, sdkAppID int64, callID string) (*Call, error) {
	return getCall(ctx, a.c, fmt.Sprintf("/v1/apps/%d/calls/%s", sdkAppID, url.PathEscape(callID)))
}

// CallQuery filters Admin.Calls; zero fields do not filter.
type CallQuery struct {
	User  string // calls this user made or was invited to
	Since time.Time
	Until time.Time
	Limit int
}

// Calls lists the app's calls, newest first.
func (a *Admin) Calls(ctx context.Context, sdkAppID int64, q CallQuery) ([]Call, error) {
	v := url.Values{}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := fmt.Sprintf("/v1/apps/%d/calls", sdkAppID)
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out struct {
		Calls []Call `json:"calls"`
	}
	return out.Calls, a.c.do(ctx, http.MethodGet, path, nil, &out)
}

// getCall reads a call answered either as the call object itself or
// wrapped as {"call": {...}}.
func getCall(ctx context.Context, c conn, path string) (*Call, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, err
	}
	var wrapped struct {
		Call *Call `json:"call"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Call != nil {
		return wrapped.Call, nil
	}
	var call Call
	if err := json.Unmarshal(raw, &call); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return &call, nil
}

// Settings are an app's settings (GET/PUT /v1/apps/{id}/settings).
type Settings struct {
	LoginPolicy      string `json:"login_policy"`       // multi (default) or single
	CallWaiting      bool   `json:"call_waiting"`       // ring a user already in a call (else busy)
	MissedCallPush   *bool  `json:"missed_call_push"`   // nil: on
	RingTimeout      int    `json:"ring_timeout"`       // seconds
	MaxInvitees      int    `json:"max_invitees"`       // per call
	InvitesPerMinute int    `json:"invites_per_minute"` // per user
	AlertTitle       string `json:"alert_title"`        // of ring pushes
	AlertBody        string `json:"alert_body"`         // of ring pushes
	Sound            string `json:"sound"`              // of ring pushes
	WebhookURL       string `json:"webhook_url"`        // call webhooks; "" for none
}

// Settings returns the app's settings, defaults filled in.
func (a *Admin) Settings(ctx context.Context, sdkAppID int64) (*Settings, error) {
	var s Settings
	return &s, a.c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%d/settings", sdkAppID), nil, &s)
}

// PutSettings replaces the app's settings (read them first to change
// one field) and returns what was stored.
func (a *Admin) PutSettings(ctx context.Context, sdkAppID int64, s Settings) (*Settings, error) {
	var out Settings
	return &out, a.c.do(ctx, http.MethodPut, fmt.Sprintf("/v1/apps/%d/settings", sdkAppID), s, &out)
}
