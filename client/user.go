package client

import (
	"context"
	"net/http"
	"time"
)

// User calls the endpoints that act for one app user, authenticated by
// the user's UserSig.
type User struct{ c conn }

// NewUser returns a client for the user the UserSig names. hc may be nil.
func NewUser(baseURL, userSig string, hc *http.Client) *User {
	return &User{c: newConn(baseURL, "UserSig "+userSig, hc)}
}

// SetAPNS is the seed's setAPNS: BusinessID is the certificate ID.
type SetAPNS struct {
	BusinessID int64  `json:"business_id"`
	Token      string `json:"token"`
	VoIP       *bool  `json:"voip,omitempty"`
	DeviceID   string `json:"device_id,omitempty"`
}

// Registration is a device token bound to a user.
type Registration struct {
	UserID            string     `json:"user"`
	Token             string     `json:"token"`
	CertificateID     int64      `json:"business_id"`
	Environment       string     `json:"environment"`
	Kind              string     `json:"kind"`
	DeviceID          string     `json:"device_id,omitempty"`
	RegisteredAt      time.Time  `json:"registered_at"`
	LastSuccessAt     *time.Time `json:"last_success_at"`
	LastFailureAt     *time.Time `json:"last_failure_at"`
	LastFailureReason string     `json:"last_failure_reason,omitempty"`
}

// SetAPNS binds a device token to the user.
func (u *User) SetAPNS(ctx context.Context, req SetAPNS) (*Registration, error) {
	var r Registration
	return &r, u.c.do(ctx, http.MethodPut, "/v1/me/apns", req, &r)
}

// RemoveAPNS unbinds a device token (setAPNS(nil)).
func (u *User) RemoveAPNS(ctx context.Context, token string) error {
	return u.c.do(ctx, http.MethodDelete, "/v1/me/apns", map[string]string{"token": token}, nil)
}

// Registrations lists the user's registrations.
func (u *User) Registrations(ctx context.Context) ([]Registration, error) {
	var out struct {
		Registrations []Registration `json:"registrations"`
	}
	return out.Registrations, u.c.do(ctx, http.MethodGet, "/v1/me/apns", nil, &out)
}
