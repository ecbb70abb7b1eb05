package storetest

import (
	"testing"

	"github.com/ringd/ringd/internal/store"
)

func testCertificates(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, 1400000001)
	mustApp(t, s, 1400000002)
	dev := newCert(1400000001, store.EnvDevelopment)
	p8 := &store.Certificate{SDKAppID: 1400000001, Type: "p8", Environment: store.EnvProduction,
		BundleID: "com.example.call", KeyID: "ABC123DEFG", TeamID: "TEAM123456",
		SecretSealed: []byte("pem"), CreatedAt: at(2)} // no topics, no expiry
	other := newCert(1400000002, store.EnvProduction)
	must(t, s.CreateCertificates(ctx, []*store.Certificate{dev, p8}))
	must(t, s.CreateCertificates(ctx, []*store.Certificate{other}))

	for _, c := range []*store.Certificate{dev, p8, other} {
		got, err := s.Certificate(ctx, c.ID)
		must(t, err)
		equal(t, "Certificate", *got, *c)
	}
	certs, err := s.Certificates(ctx, 1400000001)
	must(t, err)
	equal(t, "Certificates", certs, []store.Certificate{*dev, *p8})
	certs, err = s.Certificates(ctx, 1400000009)
	must(t, err)
	equal(t, "Certificates of an unknown app", len(certs), 0)
}

// IDs are businessIDs: they start at 10001, increase and are never reused.
func testCertificateIDs(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, 1400000001)
	var ids []int64
	for range 3 {
		ids = append(ids, mustCert(t, s, 1400000001, store.EnvProduction).ID)
	}
	equal(t, "first IDs", ids, []int64{10001, 10002, 10003})
	must(t, s.DeleteCertificate(ctx, 10003))
	if id := mustCert(t, s, 1400000001, store.EnvProduction).ID; id <= 10003 {
		t.Errorf("ID after deleting 10003 = %d, want > 10003", id)
	}
}

func testCreateCertificatesAtomic(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, 1400000001)
	good, orphan := newCert(1400000001, store.EnvProduction), newCert(1400000009, store.EnvProduction)
	err := s.CreateCertificates(ctx, []*store.Certificate{good, orphan})
	wantErr(t, "CreateCertificates with an unknown app", err, store.ErrNotFound)
	certs, err := s.Certificates(ctx, 1400000001)
	must(t, err)
	equal(t, "certificates after a failed batch", len(certs), 0)
	if good.ID != 0 {
		t.Errorf("a rolled-back certificate kept ID %d", good.ID)
	}
}

func testDeleteCertificate(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, 1400000001)
	c1 := mustCert(t, s, 1400000001, store.EnvProduction)
	c2 := mustCert(t, s, 1400000001, store.EnvDevelopment)
	mustPut(t, s, newReg(1400000001, "alice", "aa01", c1.ID, "", 1), 0)
	mustPut(t, s, newReg(1400000001, "bob", "aa02", c1.ID, "", 2), 0)
	mustPut(t, s, newReg(1400000001, "bob", "aa03", c2.ID, "", 3), 0)

	n, err := s.CountRegistrationsByCertificate(ctx, c1.ID)
	must(t, err)
	equal(t, "count before", n, 2)

	must(t, s.DeleteCertificate(ctx, c1.ID))
	_, err = s.Certificate(ctx, c1.ID)
	wantErr(t, "Certificate after delete", err, store.ErrNotFound)
	_, err = s.CountRegistrationsByCertificate(ctx, c1.ID)
	wantErr(t, "count of a deleted certificate", err, store.ErrNotFound)
	regs, err := s.Registrations(ctx, 1400000001, "bob")
	must(t, err)
	equal(t, "bob's registrations", tokens(regs), []string{"aa03"})
	n, err = s.CountRegistrationsByCertificate(ctx, c2.ID)
	must(t, err)
	equal(t, "other certificate's count", n, 1)
}

// A success and an error are both kept, so the console can show
// "last worked at X, last failed at Y".
func testMarkCertificateResult(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, 1400000001)
	c := mustCert(t, s, 1400000001, store.EnvProduction)
	must(t, s.MarkCertificateResult(ctx, c.ID, at(10), ""))
	must(t, s.MarkCertificateResult(ctx, c.ID, at(20), "ExpiredProviderToken"))
	got, err := s.Certificate(ctx, c.ID)
	must(t, err)
	c.LastSuccessAt, c.LastErrorAt, c.LastError = at(10), at(20), "ExpiredProviderToken"
	equal(t, "Certificate after marks", *got, *c)
}
