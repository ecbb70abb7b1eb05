package storetest

import (
	"fmt"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

func mustApp(t *testing.T, s store.Store, id int64) *store.App {
	t.Helper()
	a := &store.App{SDKAppID: id, Name: fmt.Sprint("app ", id), SecretSealed: []byte("sealed"),
		CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.CreateApp(t.Context(), a))
	return a
}

func newCert(app int64, env string) *store.Certificate {
	return &store.Certificate{
		SDKAppID: app, Type: "p12", Environment: env, BundleID: "com.example.call",
		Topics:    []string{"com.example.call", "com.example.call.voip"},
		VoIP:      true,
		ExpiresAt: at(86400 * 365), SecretSealed: []byte{1, 2, 3}, CreatedAt: at(1),
	}
}

func mustCert(t *testing.T, s store.Store, app int64, env string) *store.Certificate {
	t.Helper()
	c := newCert(app, env)
	must(t, s.CreateCertificates(t.Context(), []*store.Certificate{c}))
	return c
}

func newReg(app int64, user, token string, cert int64, device string, sec int) *store.Registration {
	return &store.Registration{
		SDKAppID: app, UserID: user, Token: token, CertificateID: cert,
		Environment: store.EnvProduction, Kind: store.KindVoIP, DeviceID: device,
		RegisteredAt: at(sec),
	}
}

func mustPut(t *testing.T, s store.Store, r *store.Registration, maxDevices int) []store.Registration {
	t.Helper()
	evicted, err := s.PutRegistration(t.Context(), r, maxDevices)
	must(t, err)
	return evicted
}

func tokens(regs []store.Registration) []string {
	out := []string{}
	for _, r := range regs {
		out = append(out, r.Token)
	}
	return out
}

func newPush(app int64, user, id string, sec int) *store.Push {
	return &store.Push{ID: id, SDKAppID: app, UserID: user,
		Request: []byte(`{"type":"call"}`), CreatedAt: at(sec), ExpiresAt: at(sec + 60)}
}

func newDelivery(token string, next int) *store.Delivery {
	d := &store.Delivery{Token: token, CertificateID: 10001, Environment: store.EnvProduction,
		Kind: store.KindVoIP, DeviceID: "phone-" + token, APNsID: "apns-" + token,
		State: store.DeliveryPending, UpdatedAt: at(0)}
	if next >= 0 {
		d.NextAttemptAt = at(next)
	}
	return d
}

// mustPush creates app's push id with one delivery per token, all due at t0.
func mustPush(t *testing.T, s store.Store, app int64, id string, tokens ...string) (*store.Push, []*store.Delivery) {
	t.Helper()
	p := newPush(app, "alice", id, 0)
	ds := make([]*store.Delivery, len(tokens))
	for i, tok := range tokens {
		ds[i] = newDelivery(tok, 0)
	}
	must(t, s.CreatePush(t.Context(), p, ds))
	return p, ds
}

func deref[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}
