package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Push is a push request: "user" or "users", and what to show.
type Push struct {
	User              string                     `json:"user,omitempty"`
	Users             []string                   `json:"users,omitempty"`
	Token             string                     `json:"token,omitempty"`
	Title             string                     `json:"title,omitempty"`
	Subtitle          string                     `json:"subtitle,omitempty"`
	Body              string                     `json:"body,omitempty"`
	Ext               string                     `json:"ext,omitempty"`
	Sound             string                     `json:"sound,omitempty"`
	Badge             *int                       `json:"badge,omitempty"`
	VoIP              bool                       `json:"voip,omitempty"`
	Expiration        *int64                     `json:"expiration,omitempty"`
	CollapseID        string                     `json:"collapse_id,omitempty"`
	InterruptionLevel string                     `json:"interruption_level,omitempty"`
	ThreadID          string                     `json:"thread_id,omitempty"`
	Category          string                     `json:"category,omitempty"`
	MutableContent    bool                       `json:"mutable_content,omitempty"`
	ContentAvailable  bool                       `json:"content_available,omitempty"`
	Priority          int                        `json:"priority,omitempty"`
	Custom            map[string]json.RawMessage `json:"custom,omitempty"`
}

// PushResult holds the push ID, or one per user of a batch.
type PushResult struct {
	PushID  string   `json:"push_id,omitempty"`
	PushIDs []string `json:"push_ids,omitempty"`
}

// Trace is a push with every attempt and ringd's diagnosis.
type Trace struct {
	PushID    string        `json:"push_id"`
	UserID    string        `json:"user"`
	SDKAppID  int64         `json:"sdkappid"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt *time.Time    `json:"expires_at"`
	Status    string        `json:"status"`
	Diagnosis string        `json:"diagnosis,omitempty"`
	Devices   []DeviceTrace `json:"devices"`
}

// DeviceTrace is one device of the push.
type DeviceTrace struct {
	DeviceID      string         `json:"device_id,omitempty"`
	Token         string         `json:"token"`
	Kind          string         `json:"kind"`
	PushType      string         `json:"push_type"`
	CertificateID int64          `json:"certificate_id"`
	Environment   string         `json:"environment"`
	State         string         `json:"state"`
	Reason        string         `json:"reason,omitempty"`
	APNsID        string         `json:"apns_id"`
	NextAttemptAt *time.Time     `json:"next_attempt_at,omitempty"`
	Diagnosis     string         `json:"diagnosis,omitempty"`
	Attempts      []AttemptTrace `json:"attempts"`
}

// AttemptTrace is one request to APNs and what came of it.
type AttemptTrace struct {
	At             time.Time `json:"at"`
	Environment    string    `json:"environment"`
	Host           string    `json:"host"`
	CertificateID  int64     `json:"certificate_id"`
	APNsID         string    `json:"apns_id"`
	APNsUniqueID   string    `json:"apns_unique_id,omitempty"`
	Status         int       `json:"status"`
	Reason         string    `json:"reason,omitempty"`
	LatencyMS      float64   `json:"latency_ms"`
	Classification string    `json:"classification"`
	Diagnosis      string    `json:"diagnosis,omitempty"`
}

// Final reports whether the push will change no more.
func (t *Trace) Final() bool { return t.Status != "pending" }

// Send queues a push and returns its ID(s) at once.
func (a *Admin) Send(ctx context.Context, sdkAppID int64, p Push) (*PushResult, error) {
	var out PushResult
	return &out, a.c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/apps/%d/pushes", sdkAppID), p, &out)
}

// Trace fetches a push's trace.
func (a *Admin) Trace(ctx context.Context, sdkAppID int64, pushID string) (*Trace, error) {
	var t Trace
	return &t, a.c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%d/pushes/%s", sdkAppID, url.PathEscape(pushID)), nil, &t)
}

// WaitTrace polls a push's trace until done says so (Trace.Final when nil)
// or ctx ends.
func (a *Admin) WaitTrace(ctx context.Context, sdkAppID int64, pushID string, done func(*Trace) bool) (*Trace, error) {
	if done == nil {
		done = (*Trace).Final
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last *Trace // the newest trace read, returned with the error on timeout
	for {
		t, err := a.Trace(ctx, sdkAppID, pushID)
		if err == nil {
			if done(t) {
				return t, nil
			}
			last = t
		}
		select {
		case <-ctx.Done():
			return last, errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}
