package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Simulator drives the APNs simulator's control API (/sim/v1/, served by
// `ringd serve --dev` and `ringd apns-sim`).
type Simulator struct{ c conn }

// NewSimulator returns a client for the simulator at baseURL. hc may be nil.
func NewSimulator(baseURL string, hc *http.Client) *Simulator {
	return &Simulator{c: newConn(baseURL, "", hc)}
}

// SimKey is a .p8 token key as Apple's developer portal would issue it.
type SimKey struct {
	KeyID       string `json:"key_id"`
	TeamID      string `json:"team_id"`
	P8          string `json:"p8"`
	Environment string `json:"environment"`
}

// SimCertificate is a .p12 push certificate with its password.
type SimCertificate struct {
	P12      []byte    `json:"-"`
	P12B64   string    `json:"p12"`
	Password string    `json:"password"`
	Expires  time.Time `json:"expires_at"`
}

// Notification is what a simulated device received.
type Notification struct {
	Headers     map[string]string `json:"headers"`
	Payload     json.RawMessage   `json:"payload"`
	ReceivedAt  time.Time         `json:"received_at"`
	Environment string            `json:"environment"`
}

// IssueKey issues a token key for "development", "production" or "both".
func (s *Simulator) IssueKey(ctx context.Context, environment string) (*SimKey, error) {
	var k SimKey
	return &k, s.c.do(ctx, http.MethodPost, "/sim/v1/keys", map[string]string{"environment": environment}, &k)
}

// IssueCertificate issues a push certificate for a bundle.
func (s *Simulator) IssueCertificate(ctx context.Context, bundleID, environment string, voip bool) (*SimCertificate, error) {
	var c SimCertificate
	err := s.c.do(ctx, http.MethodPost, "/sim/v1/certificates", map[string]any{"bundle_id": bundleID, "environment": environment, "voip": voip}, &c)
	if err != nil {
		return nil, err
	}
	if c.P12, err = base64.StdEncoding.DecodeString(c.P12B64); err != nil {
		return nil, fmt.Errorf("simulator certificate: %w", err)
	}
	return &c, nil
}

// MintDevice mints a device token for a bundle, environment and kind
// ("alert" or "voip").
func (s *Simulator) MintDevice(ctx context.Context, bundleID, environment, kind string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	return out.Token, s.c.do(ctx, http.MethodPost, "/sim/v1/devices", map[string]string{"bundle_id": bundleID, "environment": environment, "kind": kind}, &out)
}

// Uninstall removes the app from the device: pushes then get 410.
func (s *Simulator) Uninstall(ctx context.Context, token string) error {
	return s.c.do(ctx, http.MethodDelete, "/sim/v1/devices/"+url.PathEscape(token), nil, nil)
}

// Inbox lists what the device received.
func (s *Simulator) Inbox(ctx context.Context, token string) ([]Notification, error) {
	var out struct {
		Notifications []Notification `json:"notifications"`
	}
	return out.Notifications, s.c.do(ctx, http.MethodGet, "/sim/v1/devices/"+url.PathEscape(token)+"/inbox", nil, &out)
}

// SetFaults injects faults (see docs for the fields); nil clears them.
func (s *Simulator) SetFaults(ctx context.Context, faults map[string]any) error {
	if faults == nil {
		return s.c.do(ctx, http.MethodDelete, "/sim/v1/faults", nil, nil)
	}
	return s.c.do(ctx, http.MethodPost, "/sim/v1/faults", faults, nil)
}
