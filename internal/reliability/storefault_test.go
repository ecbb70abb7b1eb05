package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/store/storetest"
)

// storeFault breaks and mends the database under a running ringd.
type storeFault interface {
	cut(t *testing.T)
	restore(t *testing.T)
	pingFails() bool // whether the store's ping fails during the fault
}

// TestStoreOutage takes the database away from a running ringd: API calls
// must answer 503 store_unavailable (the gateway an error reply), nothing
// is half-written, and ringd recovers by itself when the database is back,
// delivering what its outbox held. PostgreSQL is cut by a TCP proxy;
// SQLite gets a failing disk: the process's file size limit is lowered
// under the database (every write fails with EFBIG, as on a full or broken
// disk), then raised again.
func TestStoreOutage(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		sim := startSim(t)
		cfg := newRingdConfig(t, sim, "", "--push-workers", "2")
		rd := cfg.start(t)
		testStoreOutage(t, "sqlite", cfg, rd, &diskFault{pid: rd.cmd.Process.Pid})
	})
	if dsn := os.Getenv("RINGD_TEST_POSTGRES"); dsn != "" {
		t.Run("postgres", func(t *testing.T) {
			sim := startSim(t)
			fresh := storetest.FreshPostgresDSN(t, dsn)
			u, err := url.Parse(fresh)
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, u.Host)
			u.Host = p.addr()
			cfg := newRingdConfig(t, sim, u.String(), "--push-workers", "2")
			rd := cfg.start(t)
			testStoreOutage(t, "postgres", cfg, rd, p)
		})
	}
}

func testStoreOutage(t *testing.T, name string, cfg *ringdConfig, rd *ringdProc, fault storeFault) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	f := newFixture(t, ctx, cfg)
	sim := cfg.sim
	var users []string
	for i := range 20 {
		u := fmt.Sprintf("p%03d", i)
		f.register(t, ctx, u, u+"-phone", "alert")
		users = append(users, u)
	}
	f.register(t, ctx, "bob", "bob-phone", "alert")
	alice := f.connect(t, ctx, "alice", "alice-phone")
	nextEvent(t, alice, 10*time.Second, client.EventSyncDone)

	// A slow APNs: the outbox holds pushes when the store goes away.
	if err := sim.api.SetFaults(ctx, map[string]any{"latency_ms": 300}); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	for range 3 {
		res, err := f.admin.Send(ctx, f.app.SDKAppID, client.Push{Users: users, Title: "before the outage"})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		l.add(kindPush, res.PushIDs...)
	}

	// Writes that straddle the outage: each either fully happened or not.
	churn := startChurn(t, ctx, f)
	churn.waitOps(t, ctx, 5)

	fault.cut(t)
	cutAt := time.Now()
	churn.waitFailures(t, ctx, 3)

	// The API answers 503 store_unavailable.
	want := "store_unavailable/503"
	tok, err := sim.api.MintDevice(ctx, bundle, "development", "alert")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.user(t, "carol").SetAPNS(ctx, client.SetAPNS{BusinessID: f.alert, Token: tok, DeviceID: "carol-phone"})
	checkCode(t, "register a token", err, want)
	_, err = f.admin.Send(ctx, f.app.SDKAppID, client.Push{User: "p000", Title: "during the outage"})
	checkCode(t, "push", err, want)
	key, err := sim.api.IssueKey(ctx, "both")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.admin.UploadP8(ctx, f.app.SDKAppID, []byte(key.P8), key.KeyID, key.TeamID, bundle, "both")
	checkCode(t, "upload a certificate", err, want)
	_, err = f.admin.StartCall(ctx, f.app.SDKAppID, client.StartCall{Caller: "dave", Invitees: []string{"bob"}, Media: "audio"})
	checkCode(t, "start a call (REST)", err, want)
	// The gateway answers a request with an error reply.
	_, err = alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code == "" || e.Code == "internal" {
		t.Errorf("invite over the gateway during the outage: %v, want an error reply that names the outage", err)
	}
	t.Logf("gateway invite during the outage: %v", err)
	erin, err := client.Connect(ctx, client.ConnectOptions{BaseURL: f.url, UserSig: f.userSig(t, "erin"), DeviceID: "erin-phone"})
	t.Logf("new connection during the outage: %v", errOr(err, "accepted"))
	if err == nil {
		_ = erin.Close()
	}
	// /readyz pings the database. PostgreSQL out of reach fails the ping;
	// a SQLite disk that refuses writes still answers reads, so /readyz
	// stays 200 there (docs/reliability.md).
	within := 10 * time.Second
	if !fault.pingFails() {
		within = 0 // one look
	}
	ready := rd.waitReady(ctx, within, 503)
	t.Logf("readyz during the outage: %v", errOrOK(ready))
	if fault.pingFails() && ready != nil {
		t.Errorf("readyz during the outage: %v", ready)
	}

	// Keep the store away long enough for the workers to hit it too.
	waitUntil(ctx, cutAt.Add(5*time.Second))
	fault.restore(t)
	restoredAt := time.Now()
	t.Logf("outage lasted %v", restoredAt.Sub(cutAt).Round(time.Millisecond))
	if err := rd.waitReady(ctx, 30*time.Second, 200); err != nil {
		t.Fatalf("readyz after the store came back: %v", err)
	}
	t.Logf("ready again %v after the store came back", time.Since(restoredAt).Round(time.Millisecond))
	churn.stop()

	// Pushes flow again without a restart.
	if err := waitFor(ctx, 30*time.Second, func() error {
		res, err := f.admin.Send(ctx, f.app.SDKAppID, client.Push{User: "p001", Title: "after the outage"})
		if err != nil {
			return err
		}
		l.add(kindPush, res.PushID)
		return nil
	}); err != nil {
		t.Fatalf("push after the outage: %v", err)
	}
	if err := sim.api.SetFaults(ctx, nil); err != nil {
		t.Fatal(err)
	}
	call, err := alice.Invite(ctx, client.InviteRequest{Invitees: []string{"bob"}, Media: "audio"})
	if err != nil {
		t.Fatalf("invite after the outage: %v", err)
	}
	if _, err := alice.Cancel(ctx, call.CallID); err != nil {
		t.Fatalf("cancel after the outage: %v", err)
	}
	l.addCall(waitEnded(t, ctx, f, call.CallID, 10*time.Second))
	if !rd.running() {
		t.Fatal("ringd exited")
	}

	churn.check(t, ctx)
	res := audit(t, ctx, f, l, 3*time.Minute)
	checkTally(t, "store-outage/"+name, res)
}

func checkCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	got := apiCode(err)
	t.Logf("%s during the outage: %s", what, got)
	if got != want {
		t.Errorf("%s during the outage: %v, want %s", what, err, want)
	}
}

func errOr(err error, ok string) string {
	if err == nil {
		return ok
	}
	return err.Error()
}

func errOrOK(err error) string {
	if err == nil {
		return "503 as wanted"
	}
	return err.Error()
}

// churn registers tokens and uploads .p8 keys (environment "both": two
// certificates in one transaction) without pause, across the outage.
type churn struct {
	f       *fixture
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	ops     int
	fails   int
	regs    map[string]regResult // token -> its user and whether the API said it was registered
	keys    map[string]bool      // key ID -> the API said it was uploaded
	failure map[string]int       // first failure codes
}

func startChurn(t *testing.T, ctx context.Context, f *fixture) *churn {
	ctx, cancel := context.WithCancel(ctx)
	c := &churn{f: f, cancel: cancel, done: make(chan struct{}), regs: map[string]regResult{}, keys: map[string]bool{}, failure: map[string]int{}}
	users := make([]*client.User, 0, 1000)
	for i := range cap(users) {
		users = append(users, f.user(t, fmt.Sprintf("churn-%d", i)))
	}
	go func() {
		defer close(c.done)
		pace := time.NewTicker(10 * time.Millisecond) // a steady stream, not a flood
		defer pace.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			if i%4 == 0 {
				key, err := f.sim.IssueKey(ctx, "both")
				if err != nil {
					continue
				}
				_, err = f.admin.UploadP8(ctx, f.app.SDKAppID, []byte(key.P8), key.KeyID, key.TeamID, bundle, "both")
				c.record(err, func() { c.keys[key.KeyID] = err == nil })
				continue
			}
			tok, err := f.sim.MintDevice(ctx, bundle, "development", "alert")
			if err != nil {
				continue
			}
			u := i % len(users)
			_, err = users[u].SetAPNS(ctx, client.SetAPNS{BusinessID: f.alert, Token: tok, DeviceID: fmt.Sprintf("churn-%d", i)})
			c.record(err, func() { c.regs[tok] = regResult{user: fmt.Sprintf("churn-%d", u), ok: err == nil} })
		}
	}()
	return c
}

type regResult struct {
	user string
	ok   bool
}

func (c *churn) record(err error, note func()) {
	if errors.Is(err, context.Canceled) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops++
	if err != nil {
		c.fails++
		c.failure[apiCode(err)]++
	}
	note()
}

func (c *churn) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops, c.fails
}

func (c *churn) waitOps(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	if err := waitFor(ctx, 30*time.Second, func() error {
		if ops, _ := c.counts(); ops < n {
			return fmt.Errorf("%d operations", ops)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (c *churn) waitFailures(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	if err := waitFor(ctx, 30*time.Second, func() error {
		if _, fails := c.counts(); fails < n {
			return fmt.Errorf("%d failures", fails)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (c *churn) stop() {
	c.cancel()
	<-c.done
}

// check reads back what the churn wrote: every acknowledged write exists,
// a .p8 upload has both of its certificates or none, and a registration
// that failed is absent or complete.
func (c *churn) check(t *testing.T, ctx context.Context) {
	t.Helper()
	certs, err := c.f.admin.Certificates(ctx, c.f.app.SDKAppID)
	if err != nil {
		t.Fatal(err)
	}
	perKey := map[string]int{}
	for _, cert := range certs {
		if cert.KeyID != "" {
			perKey[cert.KeyID]++
		}
	}
	keysOK, keysFailedPresent := 0, 0
	for kid, ok := range c.keys {
		n := perKey[kid]
		switch {
		case ok && n != 2:
			t.Errorf("key %s: upload acknowledged, %d certificates stored, want 2", kid, n)
		case !ok && n != 0 && n != 2:
			t.Errorf("key %s: upload failed and left %d certificates: half-written", kid, n)
		case !ok && n == 2:
			keysFailedPresent++
		case ok:
			keysOK++
		}
	}
	stored := map[string]client.Registration{}
	seen := map[string]bool{}
	for _, rr := range c.regs {
		if seen[rr.user] {
			continue
		}
		seen[rr.user] = true
		regs, err := c.f.admin.Devices(ctx, c.f.app.SDKAppID, rr.user)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range regs {
			stored[r.Token] = r
		}
	}
	regsOK, regsFailedPresent := 0, 0
	for tok, rr := range c.regs {
		ok := rr.ok
		r, present := stored[tok]
		switch {
		case present && (r.CertificateID != c.f.alert || r.Kind != "alert" || r.DeviceID == "" || r.UserID != rr.user):
			t.Errorf("registration %s… is incomplete: %+v", tok[:8], r)
		case ok && !present:
			t.Errorf("registration %s… acknowledged but not stored", tok[:8])
		case !ok && present:
			regsFailedPresent++
		case ok:
			regsOK++
		}
	}
	ops, fails := c.counts()
	t.Logf("churn: %d writes, %d failed %v; .p8 uploads: %d acknowledged, %d failed but stored whole; registrations: %d acknowledged, %d failed but stored whole",
		ops, fails, c.failure, keysOK, keysFailedPresent, regsOK, regsFailedPresent)
	for code := range c.failure {
		if code != "store_unavailable/503" {
			t.Errorf("a write during the outage failed with %s, want store_unavailable/503", code)
		}
	}
}

// diskFault lowers the file size limit of the ringd process (prlimit):
// every write that would reach beyond it fails with EFBIG.
type diskFault struct {
	pid  int
	prev unix.Rlimit
}

func (d *diskFault) cut(t *testing.T) {
	t.Helper()
	if err := unix.Prlimit(d.pid, unix.RLIMIT_FSIZE, nil, &d.prev); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	limit := unix.Rlimit{Cur: 0, Max: d.prev.Max}
	if err := unix.Prlimit(d.pid, unix.RLIMIT_FSIZE, &limit, nil); err != nil {
		t.Skipf("cannot limit the file size of ringd here: %v", err)
	}
}

func (d *diskFault) pingFails() bool { return false }

func (d *diskFault) restore(t *testing.T) {
	t.Helper()
	if err := unix.Prlimit(d.pid, unix.RLIMIT_FSIZE, &d.prev, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
}

// proxy is a TCP proxy to PostgreSQL that the test can cut: existing
// connections are closed and new ones closed as soon as they arrive.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer p.forget(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.forget(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
}

func (p *proxy) forget(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) cut(*testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *proxy) pingFails() bool { return true }

func (p *proxy) restore(*testing.T) {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut(nil)
	p.wg.Wait()
}
