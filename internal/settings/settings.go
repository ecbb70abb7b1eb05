// Package settings holds an app's per-app settings (login policy, ringing
// defaults, limits, webhook URL) and reads and writes them through the store.
package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Login policies.
const (
	LoginMulti  = "multi"  // several devices per user may be connected (default)
	LoginSingle = "single" // a new login ends the user's other sessions
)

// Defaults, also what an app that never saved settings gets.
const (
	DefaultRingTimeout       = 30 // seconds
	DefaultMaxInvitees       = 16
	DefaultInvitesPerMinute  = 30
	DefaultAlertBody         = "You have a new call"
	DefaultSound             = "phone_ringing.mp3"
	MaxRingTimeout           = 300
	DefaultMissedCallPush    = true
	DefaultMissedCallBodyFmt = "Missed call from %s"
	maxWebhookURL            = 2048
	maxTextSetting           = 256
)

// Settings are one app's settings. Booleans that default to true are
// pointers so that "never set" and "set to false" differ in storage.
type Settings struct {
	LoginPolicy      string `json:"login_policy"`
	CallWaiting      bool   `json:"call_waiting"` // allow ringing a user already in a call (else auto-busy)
	MissedCallPush   *bool  `json:"missed_call_push,omitempty"`
	RingTimeout      int    `json:"ring_timeout"` // seconds
	MaxInvitees      int    `json:"max_invitees"`
	InvitesPerMinute int    `json:"invites_per_minute"` // per user
	AlertTitle       string `json:"alert_title"`
	AlertBody        string `json:"alert_body"`
	Sound            string `json:"sound"`
	WebhookURL       string `json:"webhook_url"`
}

// Defaults returns the settings of an app that never changed them.
func Defaults() Settings {
	t := DefaultMissedCallPush
	return Settings{
		LoginPolicy: LoginMulti, MissedCallPush: &t, RingTimeout: DefaultRingTimeout, MaxInvitees: DefaultMaxInvitees,
		InvitesPerMinute: DefaultInvitesPerMinute, AlertBody: DefaultAlertBody, Sound: DefaultSound,
	}
}

// SendMissedCallPush reports the missed-call switch (default on).
func (s Settings) SendMissedCallPush() bool { return s.MissedCallPush == nil || *s.MissedCallPush }

// Error is a refused setting; Code is stable.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Validate checks every field.
func (s Settings) Validate() error {
	var errs []error
	bad := func(field, msg string, args ...any) {
		errs = append(errs, &Error{Code: "bad_setting", Message: field + ": " + fmt.Sprintf(msg, args...)})
	}
	if s.LoginPolicy != LoginMulti && s.LoginPolicy != LoginSingle {
		bad("login_policy", "want %q or %q", LoginMulti, LoginSingle)
	}
	if s.RingTimeout < 1 || s.RingTimeout > MaxRingTimeout {
		bad("ring_timeout", "1 to %d seconds", MaxRingTimeout)
	}
	if s.MaxInvitees < 1 || s.MaxInvitees > 256 {
		bad("max_invitees", "1 to 256")
	}
	if s.InvitesPerMinute < 1 || s.InvitesPerMinute > 10000 {
		bad("invites_per_minute", "1 to 10000")
	}
	for name, v := range map[string]string{"alert_title": s.AlertTitle, "alert_body": s.AlertBody, "sound": s.Sound} {
		if len(v) > maxTextSetting {
			bad(name, "at most %d bytes", maxTextSetting)
		}
	}
	if s.WebhookURL != "" {
		u, err := url.Parse(s.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s.WebhookURL) > maxWebhookURL {
			bad("webhook_url", "an http(s) URL of at most %d bytes", maxWebhookURL)
		}
	}
	return errors.Join(errs...)
}

// Store is where settings are kept (a store.Store).
type Store interface {
	AppSettings(ctx context.Context, sdkAppID int64) ([]byte, error)
	PutAppSettings(ctx context.Context, sdkAppID int64, settings []byte) error
}

// Load returns the app's settings, defaults filled in.
func Load(ctx context.Context, st Store, sdkAppID int64) (Settings, error) {
	raw, err := st.AppSettings(ctx, sdkAppID)
	if err != nil {
		return Settings{}, err
	}
	s := Defaults()
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return Settings{}, fmt.Errorf("settings of app %d: %w", sdkAppID, err)
		}
	}
	return s, nil
}

// Save validates and stores the app's settings.
func Save(ctx context.Context, st Store, sdkAppID int64, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return st.PutAppSettings(ctx, sdkAppID, b)
}
