package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/store"
)

func sealedP8(t *testing.T, s *credentials.Sealer, app int64) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sealed, err := credentials.SealMaterial(s, credentials.Material{P8: p8, KeyID: "ABCDE12345", TeamID: "TEAM123456"}, CertificateAAD(app))
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestCredentialCache(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sealer, err := credentials.NewSealer(make([]byte, credentials.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	good := &store.Certificate{SDKAppID: testApp, Type: "p8", Environment: store.EnvDevelopment, BundleID: "com.example.app",
		KeyID: "ABCDE12345", TeamID: "TEAM123456", SecretSealed: sealedP8(t, sealer, testApp), CreatedAt: time.Now()}
	// Sealed for another app: the additional data does not match.
	moved := &store.Certificate{SDKAppID: testApp, Type: "p8", Environment: store.EnvProduction, BundleID: "com.example.app",
		SecretSealed: sealedP8(t, sealer, testApp+1), CreatedAt: time.Now()}
	if err := e.st.CreateCertificates(ctx, []*store.Certificate{good, moved}); err != nil {
		t.Fatal(err)
	}
	cache := NewCredentialCache(e.st, sealer)

	cred, cert, err := cache.Credential(ctx, good.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cred.ID != good.ID || cred.Environment != store.EnvDevelopment || cred.SigningKey == nil || cred.KeyID != "ABCDE12345" ||
		cred.TeamID != "TEAM123456" || cred.Certificate != nil {
		t.Errorf("credential %+v", cred)
	}
	if cert.BundleID != "com.example.app" || cert.SecretSealed != nil {
		t.Errorf("certificate %+v", cert)
	}
	if _, _, err := cache.Credential(ctx, moved.ID); !errors.Is(err, ErrCredentialUnusable) {
		t.Errorf("foreign seal: %v", err)
	}
	if _, _, err := cache.Credential(ctx, 99999); !errors.Is(err, ErrCredentialUnusable) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing certificate: %v", err)
	}

	// Cached until forgotten.
	if err := e.st.DeleteCertificate(ctx, good.ID); err != nil {
		t.Fatal(err)
	}
	if again, _, err := cache.Credential(ctx, good.ID); err != nil || again != cred {
		t.Errorf("not cached: %v", err)
	}
	cache.Forget(good.ID)
	if _, _, err := cache.Credential(ctx, good.ID); !errors.Is(err, ErrCredentialUnusable) {
		t.Errorf("deleted certificate after Forget: %v", err)
	}
}
