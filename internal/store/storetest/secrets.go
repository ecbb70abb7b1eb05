package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// RotateAppSecret keeps the replaced secret as the previous one for the
// grace period, and keeps none without a grace period.
func testRotateAppSecret(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	a := mustApp(t, s, app)
	must(t, s.RotateAppSecret(ctx, app, []byte("second"), at(3600), at(10)))
	got, err := s.App(ctx, app)
	must(t, err)
	a.SecretSealed, a.PreviousSecretSealed, a.PreviousSecretUntil, a.UpdatedAt = []byte("second"), []byte("sealed"), at(3600), at(10)
	equal(t, "App after a rotation with grace", *got, *a)

	// A second rotation within the grace period replaces the previous one.
	must(t, s.RotateAppSecret(ctx, app, []byte("third"), at(7200), at(20)))
	got, err = s.App(ctx, app)
	must(t, err)
	a.SecretSealed, a.PreviousSecretSealed, a.PreviousSecretUntil, a.UpdatedAt = []byte("third"), []byte("second"), at(7200), at(20)
	equal(t, "App after a second rotation", *got, *a)

	// No grace: no previous secret.
	must(t, s.RotateAppSecret(ctx, app, []byte("fourth"), at(0), at(30)))
	got, err = s.App(ctx, app)
	must(t, err)
	a.SecretSealed, a.PreviousSecretSealed, a.UpdatedAt = []byte("fourth"), nil, at(30)
	a.PreviousSecretUntil = time.Time{}
	equal(t, "App after a rotation without grace", *got, *a)

	wantErr(t, "RotateAppSecret of an unknown app", s.RotateAppSecret(ctx, 1, []byte("x"), at(1), at(0)), store.ErrNotFound)
}

// SealedSecrets lists every sealed value; ResealSecrets replaces them all
// in one transaction, or none.
func testResealSecrets(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, app+1)
	must(t, s.RotateAppSecret(ctx, app+1, []byte("new"), at(3600), at(10)))
	c1 := mustCert(t, s, app, store.EnvProduction)
	c2 := mustCert(t, s, app+1, store.EnvDevelopment)

	list, err := s.SealedSecrets(ctx)
	must(t, err)
	want := []store.SealedSecret{
		{Kind: store.SealedAppSecret, SDKAppID: app, ID: app, Sealed: []byte("sealed")},
		{Kind: store.SealedAppSecret, SDKAppID: app + 1, ID: app + 1, Sealed: []byte("new")},
		{Kind: store.SealedAppPreviousSecret, SDKAppID: app + 1, ID: app + 1, Sealed: []byte("sealed")},
		{Kind: store.SealedCertificate, SDKAppID: app, ID: c1.ID, Sealed: []byte{1, 2, 3}},
		{Kind: store.SealedCertificate, SDKAppID: app + 1, ID: c2.ID, Sealed: []byte{1, 2, 3}},
	}
	equal(t, "SealedSecrets", list, want)

	// A failing reseal writes nothing.
	boom := errors.New("boom")
	calls := 0
	_, err = s.ResealSecrets(ctx, func(sec store.SealedSecret) ([]byte, error) {
		if calls++; calls == 4 {
			return nil, boom
		}
		return append([]byte("re:"), sec.Sealed...), nil
	})
	wantErr(t, "ResealSecrets that fails midway", err, boom)
	list, err = s.SealedSecrets(ctx)
	must(t, err)
	equal(t, "SealedSecrets after a failed reseal", list, want)

	n, err := s.ResealSecrets(ctx, func(sec store.SealedSecret) ([]byte, error) {
		return fmt.Appendf(nil, "%s/%d:%s", sec.Kind, sec.ID, sec.Sealed), nil
	})
	must(t, err)
	equal(t, "resealed", n, len(want))
	list, err = s.SealedSecrets(ctx)
	must(t, err)
	for i := range want {
		want[i].Sealed = fmt.Appendf(nil, "%s/%d:%s", want[i].Kind, want[i].ID, want[i].Sealed)
	}
	equal(t, "SealedSecrets after the reseal", list, want)
	got, err := s.Certificate(ctx, c1.ID)
	must(t, err)
	equal(t, "certificate material after the reseal", string(got.SecretSealed), fmt.Sprintf("certificate/%d:\x01\x02\x03", c1.ID))
}
