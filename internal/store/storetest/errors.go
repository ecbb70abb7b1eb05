package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

// Every method that names one record fails with store.ErrNotFound when it
// does not exist, and never returns (nil, nil).
func testNotFound(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"App", func(ctx context.Context) error { return nilOr(s.App(ctx, 1)) }},
		{"UpdateAppSecret", func(ctx context.Context) error { return s.UpdateAppSecret(ctx, 1, nil, at(1)) }},
		{"DeleteApp", func(ctx context.Context) error { return s.DeleteApp(ctx, 1) }},
		{"Certificate", func(ctx context.Context) error { return nilOr(s.Certificate(ctx, 10001)) }},
		{"DeleteCertificate", func(ctx context.Context) error { return s.DeleteCertificate(ctx, 10001) }},
		{"CountRegistrationsByCertificate", func(ctx context.Context) error {
			_, err := s.CountRegistrationsByCertificate(ctx, 10001)
			return err
		}},
		{"MarkCertificateResult", func(ctx context.Context) error { return s.MarkCertificateResult(ctx, 10001, at(1), "") }},
		{"Registration", func(ctx context.Context) error { return nilOr(s.Registration(ctx, app, "aa01")) }},
		{"DeleteRegistration", func(ctx context.Context) error { return s.DeleteRegistration(ctx, app, "aa01") }},
		{"RemoveRegistrationIfBefore", func(ctx context.Context) error {
			_, err := s.RemoveRegistrationIfBefore(ctx, app, "aa01", at(1))
			return err
		}},
		{"MarkRegistrationResult", func(ctx context.Context) error {
			return s.MarkRegistrationResult(ctx, app, "aa01", at(1), "Unregistered")
		}},
		{"MoveRegistration", func(ctx context.Context) error { return s.MoveRegistration(ctx, app, "aa01", 10001, "") }},
		{"Push", func(ctx context.Context) error { return nilOr(s.Push(ctx, app, "push-1")) }},
		{"FinishAttempt", func(ctx context.Context) error {
			return s.FinishAttempt(ctx, nil, &store.Delivery{ID: 1, State: store.DeliveryFailed})
		}},
		{"Call", func(ctx context.Context) error { return nilOr(s.Call(ctx, app, "call-1")) }},
		{"PutCall", func(ctx context.Context) error {
			return s.PutCall(ctx, newCall(1400000009, "call-1", "alice", 1, "bob"))
		}},
		{"Session", func(ctx context.Context) error { return nilOr(s.Session(ctx, app, "alice", "phone")) }},
		{"PutSession", func(ctx context.Context) error {
			return s.PutSession(ctx, &store.Session{SDKAppID: 1400000009, UserID: "alice", DeviceID: "phone"})
		}},
		{"AppSettings", func(ctx context.Context) error {
			_, err := s.AppSettings(ctx, 1400000009)
			return err
		}},
		{"PutAppSettings", func(ctx context.Context) error { return s.PutAppSettings(ctx, 1400000009, []byte("{}")) }},
		{"EnqueueWebhook", func(ctx context.Context) error { return s.EnqueueWebhook(ctx, newWebhook(1400000009, "e1", 0)) }},
		{"FinishWebhook", func(ctx context.Context) error {
			return s.FinishWebhook(ctx, &store.Webhook{ID: 1, State: store.WebhookFailed})
		}},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.call(t.Context()), store.ErrNotFound)
	}
}

var errRecordWithError = errors.New("returned a record and an error")

// nilOr checks the (nil, err) contract of the single-record getters.
func nilOr[T any](v *T, err error) error {
	if err == nil {
		return nil
	}
	if v != nil {
		return errRecordWithError
	}
	return err
}

func testClosed(t *testing.T, open Open) {
	s := open(t)
	must(t, s.Ping(t.Context()))
	must(t, s.Close())
	wantErr(t, "Ping after Close", s.Ping(t.Context()), store.ErrUnavailable)
	_, err := s.App(t.Context(), app)
	wantErr(t, "App after Close", err, store.ErrUnavailable)
}
