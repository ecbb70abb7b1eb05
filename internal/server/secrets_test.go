package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/server"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/postgres"
	"github.com/ringd/ringd/internal/store/sqlite"
)

// running is a server a test starts and stops by itself.
type running struct {
	*env
	dataDir string
	stop    func()
}

// startCfg runs a server with cfg (Addr and logger filled in); stop shuts
// it down and waits, and is also a cleanup.
func startCfg(t *testing.T, cfg config.Config) *running {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	e := &env{srv: srv, admin: client.NewAdmin(srv.URL(), srv.AdminToken(), nil), sim: client.NewSimulator(srv.URL(), nil)}
	return &running{env: e, dataDir: cfg.DataDir, stop: stop}
}

func devConfig(t *testing.T, database string) config.Config {
	cfg := config.Default()
	// A directory ringd creates, so its mode is ringd's.
	cfg.Dev, cfg.DataDir, cfg.Database = true, filepath.Join(t.TempDir(), "ringd-data"), database
	return cfg
}

// secretsOf uploads a .p12 and a .p8 into a new app and rotates its secret
// once, and returns every secret that went in, in the forms it could be
// found in a file.
func secretsOf(t *testing.T, e *env) (app *client.App, needles map[string][]byte) {
	t.Helper()
	ctx := ctxT(t)
	app = must[*client.App](t)(e.admin.CreateApp(ctx, "secrets-app-name"))
	first := app.SecretKey
	rotated := must[*client.App](t)(e.admin.RotateSecret(ctx, app.SDKAppID))
	app.SecretKey = rotated.SecretKey
	cert := must[*client.SimCertificate](t)(e.sim.IssueCertificate(ctx, bundle, "development", false))
	must[[]client.Certificate](t)(e.admin.UploadP12(ctx, app.SDKAppID, cert.P12, cert.Password, "development"))
	key := must[*client.SimKey](t)(e.sim.IssueKey(ctx, "development"))
	must[[]client.Certificate](t)(e.admin.UploadP8(ctx, app.SDKAppID, []byte(key.P8), key.KeyID, key.TeamID, bundle, "development"))

	block, _ := pem.Decode([]byte(key.P8))
	if block == nil {
		t.Fatal("the simulator's .p8 is not PEM")
	}
	der := block.Bytes
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := priv.(interface{ Bytes() ([]byte, error) }).Bytes()
	if err != nil {
		t.Fatalf("p8 scalar: %v", err)
	}
	mid := func(b []byte) []byte { return b[len(b)/2-16 : len(b)/2+16] }
	needles = map[string][]byte{
		"app secret key":                  []byte(app.SecretKey),
		"previous app secret key":         []byte(first),
		"p12 password":                    []byte(cert.Password),
		"p12 file (raw)":                  mid(cert.P12),
		"p12 file (base64)":               []byte(base64.StdEncoding.EncodeToString(cert.P12)[40:100]),
		"p8 PEM":                          []byte(strings.Split(key.P8, "\n")[1]),
		"p8 key (DER)":                    mid(der),
		"p8 private scalar":               scalar,
		"p8 key (base64 of the DER, std)": []byte(base64.StdEncoding.EncodeToString(der)[20:80]),
	}
	return app, needles
}

// scanFiles returns which needles are in the files of dir whose name
// starts with prefix ("file: what"), and how many bytes it read.
func scanFiles(t *testing.T, dir, prefix string, needles map[string][]byte) (found []string, scanned int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scanned += len(b)
		for what, n := range needles {
			if len(n) < 8 {
				t.Fatalf("needle %q is too short to mean anything", what)
			}
			if bytes.Contains(b, n) {
				found = append(found, filepath.Base(f)+": "+what)
			}
		}
	}
	return found, scanned
}

// TestSecretsEncryptedAtRest uploads a .p12 with its password and a .p8,
// rotates an app secret, and searches the SQLite database and its WAL,
// while the server runs and after it stopped, for each secret in clear.
func TestSecretsEncryptedAtRest(t *testing.T) {
	r := startCfg(t, devConfig(t, ""))
	_, needles := secretsOf(t, r.env)
	dataDir := r.dataDir
	check := func(when string) {
		t.Helper()
		found, scanned := scanFiles(t, dataDir, "ringd.db", needles)
		if scanned == 0 {
			t.Fatalf("%s: no database file to scan", when)
		}
		if len(found) > 0 {
			t.Errorf("%s: secrets in clear: %v", when, found)
		}
		// Control: what is not secret (the app's name) is found by the
		// same scan, so it would find the secrets too.
		if found, _ := scanFiles(t, dataDir, "ringd.db", map[string][]byte{"name": []byte("secrets-app-name")}); len(found) == 0 {
			t.Fatalf("%s: the scan does not find the app's name, which is stored in clear", when)
		}
	}
	check("while the server runs")
	r.stop()
	check("after the server stopped")
	// The key itself and the admin token are files of their own, 0600.
	for _, name := range []string{"master.key", "admin.token"} {
		fi, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory mode %v (%v), want no access for group and others", fi.Mode().Perm(), err)
	}
}

// TestRotateMasterKey: rotate-master-key refuses to run beside a server,
// re-encrypts every secret, the server starts with the new key and pushes
// and UserSigs (also of the previous secret in its grace period) still
// work, and the old key opens nothing.
func TestRotateMasterKey(t *testing.T) {
	forEachBackend(t, testRotateMasterKey)
}

func testRotateMasterKey(t *testing.T, database string) {
	ctx := ctxT(t)
	cfg := devConfig(t, database)
	r := startCfg(t, cfg)
	app := must[*client.App](t)(r.admin.CreateApp(ctx, "rotation"))
	oldSig := sigOf(t, app, "alice")
	rotated := must[*client.App](t)(r.admin.RotateSecret(ctx, app.SDKAppID)) // the first key is now the previous one
	app.SecretKey = rotated.SecretKey
	certs := r.uploadP12(t, app, "development", false)
	tok := must[string](t)(r.sim.MintDevice(ctx, bundle, "development", "alert"))
	must[*client.Registration](t)(client.NewUser(r.srv.URL(), oldSig, nil).SetAPNS(ctx, client.SetAPNS{BusinessID: certs[0].ID, Token: tok, DeviceID: "phone"}))
	must[*client.PushResult](t)(r.admin.Send(ctx, app.SDKAppID, client.Push{User: "alice", Title: "before"}))
	r.waitInbox(t, tok, 1)

	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	_, err := server.RotateMasterKey(ctx, cfg, newKeyFile)
	if !errors.Is(err, server.ErrDataDirBusy) {
		t.Fatalf("rotation beside a running server: %v, want ErrDataDirBusy", err)
	}
	r.stop()

	oldKey, err := credentials.ReadMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := server.RotateMasterKey(ctx, cfg, newKeyFile)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	// The demo app's secret, the app's current and previous secrets and
	// the demo's and the app's certificates.
	if !res.Created || res.Resealed < 4 {
		t.Fatalf("rotation result %+v", res)
	}
	if fi, err := os.Stat(newKeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v", fi, err)
	}
	newKey, err := credentials.ReadMasterKey(newKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	checkSealed(t, cfg, oldKey, newKey)

	// Again with the same key: refused, nothing changes.
	cfgNew := cfg
	cfgNew.MasterKeyFile = newKeyFile
	if _, err := server.RotateMasterKey(ctx, cfgNew, newKeyFile); err == nil {
		t.Fatal("a rotation to the current key was accepted")
	}
	// With the wrong current key: refused, nothing changes.
	if _, err := server.RotateMasterKey(ctx, cfg, filepath.Join(t.TempDir(), "other.key")); err == nil {
		t.Fatal("a rotation from a key that opens nothing was accepted")
	}
	checkSealed(t, cfg, oldKey, newKey)

	r2 := startCfg(t, cfgNew)
	if _, err := client.NewUser(r2.srv.URL(), oldSig, nil).Registrations(ctx); err != nil {
		t.Fatalf("a UserSig of the previous secret after the rotation: %v", err)
	}
	if _, err := r2.userFor(t, app, "alice").Registrations(ctx); err != nil {
		t.Fatalf("a UserSig of the current secret after the rotation: %v", err)
	}
	must[*client.PushResult](t)(r2.admin.Send(ctx, app.SDKAppID, client.Push{User: "alice", Title: "after"}))
	r2.waitInbox(t, tok, 2)
	if r2.srv.Demo() == nil || r2.srv.Demo().SecretKey == "" {
		t.Fatal("the demo app's secret did not open after the rotation")
	}
	r2.stop()
}

// checkSealed opens the stopped server's store and checks that every
// sealed secret opens with newKey and none with oldKey.
func checkSealed(t *testing.T, cfg config.Config, oldKey, newKey []byte) {
	t.Helper()
	ctx := ctxT(t)
	var st store.Store
	var err error
	if cfg.Database != "" {
		st, err = postgres.Open(ctx, cfg.Database)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "ringd.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oldS, _ := credentials.NewSealer(oldKey)
	newS, _ := credentials.NewSealer(newKey)
	list, err := st.SealedSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range list {
		aad := httpapi.AppSecretAAD(s.SDKAppID)
		if s.Kind == store.SealedCertificate {
			aad = push.CertificateAAD(s.SDKAppID)
		}
		if _, err := newS.Open(s.Sealed, aad); err != nil {
			t.Errorf("%s %d does not open with the new key: %v", s.Kind, s.ID, err)
		}
		if _, err := oldS.Open(s.Sealed, aad); err == nil {
			t.Errorf("%s %d still opens with the old key", s.Kind, s.ID)
		}
		kinds[s.Kind]++
	}
	if kinds[store.SealedAppSecret] < 2 || kinds[store.SealedAppPreviousSecret] < 1 || kinds[store.SealedCertificate] < 2 {
		t.Errorf("sealed secrets by kind %v: expected the demo's and the app's", kinds)
	}
}
