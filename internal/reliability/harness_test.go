package reliability_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/store/storetest"
)

const bundle = "com.example.reliability"

// full reports whether the long forms of the scenarios run.
func full() bool { return os.Getenv("RINGD_RELIABILITY_FULL") == "1" }

// forEachBackend runs f against SQLite, and against a fresh PostgreSQL
// schema when RINGD_TEST_POSTGRES names a server.
func forEachBackend(t *testing.T, f func(t *testing.T, database string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "") })
	if dsn := os.Getenv("RINGD_TEST_POSTGRES"); dsn != "" {
		t.Run("postgres", func(t *testing.T) { f(t, storetest.FreshPostgresDSN(t, dsn)) })
	}
}

// logBuf collects a process's output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a child process of the test: ringd serve or ringd apns-sim.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuf
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startProc runs the ringd binary with args. Its output goes through a
// pipe (never a file: a test that limits the file size of the process
// must not silence its logs), and is printed when the test fails.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s (pid %d) ---\n%s", name, p.cmd.Process.Pid, tail(p.out.String(), 80))
		}
	})
	return p
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = append([]string{fmt.Sprintf("[… %d lines]", len(parts)-lines)}, parts[len(parts)-lines:]...)
	}
	return strings.Join(parts, "\n")
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && p.running() {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// exit waits for the process to end by itself and returns its exit code.
func (p *proc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still runs %v after it was told to stop", p.name, within)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

// waitFor polls cond every 20ms until it returns nil or the deadline
// passes; it returns the last error.
func waitFor(ctx context.Context, within time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", within, err)
		case <-tick.C:
		}
	}
}

// waitUntil blocks until the wall clock reaches at (a deadline the test
// set itself, not a condition to poll).
func waitUntil(ctx context.Context, at time.Time) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// simProc is `ringd apns-sim` in its own process: "Apple" outlives a
// ringd that is killed, so its inboxes are the true record of what was
// delivered. (The --dev simulator dies with ringd and flushes its inboxes
// to disk once a second, so a SIGKILL would lose its last deliveries.)
type simProc struct {
	*proc
	control, sandbox, production, caFile string
	api                                  *client.Simulator
}

var simBanner = regexp.MustCompile(`APNs simulator: sandbox (\S+), production (\S+), control API (http://\S+)/sim/v1/`)

func startSim(t *testing.T) *simProc {
	t.Helper()
	dir := t.TempDir()
	s := &simProc{caFile: filepath.Join(dir, "ca.pem")}
	s.proc = startProc(t, "apns-sim", nil, "apns-sim", "--addr", "127.0.0.1:0", "--sandbox-addr", "127.0.0.1:0",
		"--production-addr", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state"), "--ca-out", s.caFile)
	err := waitFor(t.Context(), 30*time.Second, func() error {
		if !s.running() {
			return errors.New("apns-sim exited")
		}
		m := simBanner.FindStringSubmatch(s.out.String())
		if m == nil {
			return errors.New("no banner yet")
		}
		s.sandbox, s.production, s.control = strings.TrimSuffix(m[1], ","), strings.TrimSuffix(m[2], ","), m[3]
		return nil
	})
	if err != nil {
		t.Fatalf("apns-sim: %v", err)
	}
	s.api = client.NewSimulator(s.control, nil)
	return s
}

// ringdProc is one `ringd serve` process.
type ringdProc struct {
	*proc
	url string
}

// ringdConfig is what stays the same across restarts of one ringd.
type ringdConfig struct {
	addr, dataDir, database, adminToken string
	sim                                 *simProc
	args                                []string // more flags
}

func newRingdConfig(t *testing.T, sim *simProc, database string, args ...string) *ringdConfig {
	return &ringdConfig{addr: freeAddr(t), dataDir: t.TempDir(), database: database, adminToken: randomHex(16), sim: sim, args: args}
}

// start runs ringd serve and waits until /readyz answers 200.
func (c *ringdConfig) start(t *testing.T) *ringdProc {
	t.Helper()
	args := []string{"serve", "--addr", c.addr, "--data-dir", c.dataDir,
		"--apns-production-url", c.sim.production, "--apns-sandbox-url", c.sim.sandbox, "--apns-ca-file", c.sim.caFile}
	if c.database != "" {
		args = append(args, "--database", c.database)
	}
	args = append(args, c.args...)
	r := &ringdProc{url: "http://" + c.addr}
	r.proc = startProc(t, "ringd", []string{"RINGD_ADMIN_TOKEN=" + c.adminToken}, args...)
	if err := r.waitReady(t.Context(), 60*time.Second, http.StatusOK); err != nil {
		t.Fatalf("ringd did not become ready: %v", err)
	}
	return r
}

// waitReady polls /readyz until it answers want.
func (r *ringdProc) waitReady(ctx context.Context, within time.Duration, want int) error {
	hc := &http.Client{Timeout: 3 * time.Second}
	return waitFor(ctx, within, func() error {
		if !r.running() {
			return errors.New("ringd exited")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/readyz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("readyz %d, want %d", resp.StatusCode, want)
		}
		return nil
	})
}

// fixture is an app with development certificates for alert and VoIP
// pushes, and the tokens registered so far.
type fixture struct {
	url    string
	admin  *client.Admin
	sim    *client.Simulator
	app    *client.App
	alert  int64               // certificate ID of the alert certificate
	voip   int64               // certificate ID of the VoIP Services certificate
	tokens map[string][]string // user -> tokens
}

func newFixture(t *testing.T, ctx context.Context, c *ringdConfig) *fixture {
	t.Helper()
	f := &fixture{url: "http://" + c.addr, admin: client.NewAdmin("http://"+c.addr, c.adminToken, nil), sim: c.sim.api, tokens: map[string][]string{}}
	var err error
	if f.app, err = f.admin.CreateApp(ctx, "reliability"); err != nil {
		t.Fatalf("create app: %v", err)
	}
	f.alert = f.upload(t, ctx, false)
	f.voip = f.upload(t, ctx, true)
	return f
}

func (f *fixture) upload(t *testing.T, ctx context.Context, voip bool) int64 {
	t.Helper()
	cert, err := f.sim.IssueCertificate(ctx, bundle, "development", voip)
	if err != nil {
		t.Fatalf("simulator certificate: %v", err)
	}
	certs, err := f.admin.UploadP12(ctx, f.app.SDKAppID, cert.P12, cert.Password, "development")
	if err != nil || len(certs) != 1 {
		t.Fatalf("upload certificate: %v (%d certificates)", err, len(certs))
	}
	return certs[0].ID
}

func (f *fixture) userSig(t *testing.T, user string) string {
	t.Helper()
	sig, err := auth.GenUserSig(f.app.SDKAppID, f.app.SecretKey, user, 2*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (f *fixture) user(t *testing.T, user string) *client.User {
	return client.NewUser(f.url, f.userSig(t, user), nil)
}

// register mints a simulator token of kind ("alert" or "voip") and binds
// it to user's device.
func (f *fixture) register(t *testing.T, ctx context.Context, user, device, kind string) string {
	t.Helper()
	tok, err := f.sim.MintDevice(ctx, bundle, "development", kind)
	if err != nil {
		t.Fatalf("mint device: %v", err)
	}
	cert := f.alert
	if kind == "voip" {
		cert = f.voip
	}
	if _, err := f.user(t, user).SetAPNS(ctx, client.SetAPNS{BusinessID: cert, Token: tok, DeviceID: device}); err != nil {
		t.Fatalf("register %s token of %s: %v", kind, user, err)
	}
	f.tokens[user] = append(f.tokens[user], tok)
	return tok
}

// connect opens an SDK connection that reconnects quickly (the defaults
// back off up to 30s, which only slows the test down).
func (f *fixture) connect(t *testing.T, ctx context.Context, user, device string) *client.Conn {
	t.Helper()
	c, err := client.Connect(ctx, client.ConnectOptions{
		BaseURL: f.url, UserSig: f.userSig(t, user), DeviceID: device,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, EventBuffer: 1024,
	})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", user, device, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nextEvent waits for an event of one of the types on c and returns it,
// skipping the others.
func nextEvent(t *testing.T, c *client.Conn, within time.Duration, types ...string) client.Event {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection finished (%v) while waiting for %v", c.Err(), types)
			}
			for _, typ := range types {
				if ev.Type == typ {
					return ev
				}
			}
		case <-timer.C:
			t.Fatalf("no %v event within %v", types, within)
		}
	}
}

func apiCode(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code + "/" + strconv.Itoa(e.Status)
	}
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}
