package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
)

const bundleID = "com.example.ringd.bench"

// env is the target of a run: ringd (started or given), its simulator,
// and an app with development certificates for alert and VoIP pushes.
type env struct {
	o        Options
	url      string
	token    string
	pid      int // ringd's, 0 when unknown
	simPID   int
	dir      string
	procs    []*child
	hc       *http.Client
	admin    *client.Admin
	sim      *client.Simulator
	app      *client.App
	alert    int64 // certificate IDs
	voip     int64
	progress *progress
	separate bool   // the simulator runs in its own process
	debugURL string // ringd's --debug-addr, when the bench profiles it

	// The separate simulator's sandbox endpoint and CA, for a client of
	// the bench's own (scenario transport).
	sandboxURL, caFile string
}

type child struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep the last ~1 MiB of a chatty child
		b.buf.Next(b.buf.Len() - 512<<10)
	}
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(ctx context.Context, scenario string, o Options) (*env, error) {
	e := &env{o: o, hc: newHTTPClient(64), progress: newProgress(o.Progress)}
	if o.URL != "" {
		if err := CheckLoopback(o.URL); err != nil {
			return nil, err
		}
		if o.SimURL != "" {
			if err := CheckLoopback(o.SimURL); err != nil {
				return nil, err
			}
		}
		e.url, e.token, e.pid = strings.TrimRight(o.URL, "/"), o.AdminToken, o.PID
		simURL := o.SimURL
		if simURL == "" {
			simURL = e.url // --dev serves /sim/v1 itself
		}
		e.sim = client.NewSimulator(simURL, e.hc)
	} else if err := e.start(ctx, scenario); err != nil {
		e.close()
		return nil, err
	}
	e.admin = client.NewAdmin(e.url, e.token, e.hc)
	if err := e.setupApp(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) describe() string {
	switch {
	case e.o.URL != "":
		return "given ringd " + e.url
	case e.separate:
		return "ringd serve + ringd apns-sim (separate processes)"
	}
	return "ringd serve --dev (simulator in-process)"
}

var simBanner = regexp.MustCompile(`APNs simulator: sandbox (\S+), production (\S+), control API (http://\S+)/sim/v1/`)

// start runs the simulator (unless in-process) and ringd serve as
// children, in a temporary data directory, on random ports.
func (e *env) start(ctx context.Context, scenario string) error {
	if e.o.Binary == "" {
		return errors.New("no ringd binary to start (Options.Binary)")
	}
	dir, err := os.MkdirTemp("", "ringd-bench-")
	if err != nil {
		return err
	}
	e.dir = dir
	e.token = randomHex(16)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	e.url = "http://" + addr
	args := []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "ringd"), "--log-level", "warn"}
	// Every client of the bench is on loopback, most from one address;
	// the per-IP limits exist for the Internet, not for a benchmark.
	args = append(args, "--max-conns-per-ip", "0", "--max-websockets-per-ip", "0")
	if e.o.InProcessSim {
		args = append(args, "--dev")
	} else {
		e.separate = true
		caFile := filepath.Join(dir, "ca.pem")
		sim, err := e.spawn("apns-sim", e.o.SimCPUs, nil, "apns-sim", "--addr", "127.0.0.1:0", "--sandbox-addr", "127.0.0.1:0",
			"--production-addr", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "sim"), "--ca-out", caFile)
		if err != nil {
			return err
		}
		var m []string
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = waitFor(wctx, 20*time.Millisecond, func() error {
			if exited(sim) {
				return fmt.Errorf("apns-sim exited: %s", tail(sim.out.String()))
			}
			if m = simBanner.FindStringSubmatch(sim.out.String()); m == nil {
				return errors.New("no banner yet")
			}
			return nil
		})
		cancel()
		if err != nil {
			return fmt.Errorf("apns-sim: %w", err)
		}
		e.simPID = sim.cmd.Process.Pid
		e.sandboxURL, e.caFile = strings.TrimSuffix(m[1], ","), caFile
		e.sim = client.NewSimulator(m[3], e.hc)
		args = append(args, "--apns-sandbox-url", strings.TrimSuffix(m[1], ","), "--apns-production-url", strings.TrimSuffix(m[2], ","), "--apns-ca-file", caFile)
	}
	if e.o.CPUProfile != "" {
		debugAddr, err := freeAddr()
		if err != nil {
			return err
		}
		e.debugURL = "http://" + debugAddr
		args = append(args, "--debug-addr", debugAddr)
	}
	args = append(args, e.o.ServerArgs...)
	srv, err := e.spawn("ringd", e.o.ServerCPUs, []string{"RINGD_ADMIN_TOKEN=" + e.token}, args...)
	if err != nil {
		return err
	}
	e.pid = srv.cmd.Process.Pid
	if e.o.InProcessSim {
		e.sim = client.NewSimulator(e.url, e.hc)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitFor(wctx, 20*time.Millisecond, func() error {
		if exited(srv) {
			return fmt.Errorf("ringd exited: %s", tail(srv.out.String()))
		}
		resp, err := e.hc.Get(e.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

// spawn starts the binary with args, pinned to cpus by taskset when
// given (the pid stays ringd's own: taskset execs it).
func (e *env) spawn(name, cpus string, extraEnv []string, args ...string) (*child, error) {
	bin, argv := e.o.Binary, args
	if cpus != "" {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("pinning to CPUs %s: %w", cpus, err)
		}
		bin, argv = ts, append([]string{"-c", cpus, e.o.Binary}, args...)
	}
	c := &child{name: name, out: &syncBuf{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, argv...)
	c.cmd.Env = append(os.Environ(), extraEnv...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	e.procs = append(e.procs, c)
	return c, nil
}

// errorLines returns the last n lines the children logged at level
// ERROR, to explain the errors a run counted.
func (e *env) errorLines(n int) []string {
	var out []string
	for _, c := range e.procs {
		for _, l := range strings.Split(c.out.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				out = append(out, c.name+": "+l)
			}
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func exited(c *child) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// close stops the children (SIGTERM, then SIGKILL after 10s) and removes
// the data directory.
func (e *env) close() {
	e.progress.done()
	for i := len(e.procs) - 1; i >= 0; i-- {
		c := e.procs[i]
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// setupApp creates an app with an alert and a VoIP certificate issued by
// the simulator, with limits raised for load.
func (e *env) setupApp(ctx context.Context) error {
	app, err := e.admin.CreateApp(ctx, "bench "+time.Now().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	e.app = app
	for _, voip := range []bool{false, true} {
		cert, err := e.sim.IssueCertificate(ctx, bundleID, "development", voip)
		if err != nil {
			return fmt.Errorf("simulator certificate: %w", err)
		}
		certs, err := e.admin.UploadP12(ctx, app.SDKAppID, cert.P12, cert.Password, "development")
		if err != nil || len(certs) != 1 {
			return fmt.Errorf("upload certificate: %v (%d certificates)", err, len(certs))
		}
		if voip {
			e.voip = certs[0].ID
		} else {
			e.alert = certs[0].ID
		}
	}
	s, err := e.admin.Settings(ctx, app.SDKAppID)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	off := false
	s.InvitesPerMinute, s.CallWaiting, s.MissedCallPush = 10000, true, &off
	if _, err := e.admin.PutSettings(ctx, app.SDKAppID, *s); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}

func (e *env) userSig(user string) string {
	sig, err := auth.GenUserSig(e.app.SDKAppID, e.app.SecretKey, user, 24*time.Hour, time.Now())
	if err != nil {
		panic(err) // only fails on an empty user or secret, which we never pass
	}
	return sig
}

// register mints n simulator tokens of kind for users name(0..n-1), one
// device each, with conc requests in flight; it returns the tokens.
func (e *env) register(ctx context.Context, n int, kind string, name func(int) string) ([]string, error) {
	tokens := make([]string, n)
	cert := e.alert
	if kind == "voip" {
		cert = e.voip
	}
	var (
		mu    sync.Mutex
		first error
		done  int
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				tok, err := e.sim.MintDevice(ctx, bundleID, "development", kind)
				if err == nil {
					tokens[i] = tok
					u := client.NewUser(e.url, e.userSig(name(i)), e.hc)
					_, err = u.SetAPNS(ctx, client.SetAPNS{BusinessID: cert, Token: tok, DeviceID: "dev-" + name(i)})
				}
				mu.Lock()
				done++
				if err != nil && first == nil {
					first = fmt.Errorf("register %s: %w", name(i), err)
				}
				e.progress.set("setup: %d/%d %s devices registered", done, n, kind)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return tokens, first
}

// progress is one status line on a terminal, rewritten in place.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	dirty bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) set(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.dirty = true
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
}

func (p *progress) done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirty {
		fmt.Fprint(p.w, "\r\033[K")
		p.dirty = false
	}
}

// raiseNoFile lifts RLIMIT_NOFILE as far as it may: both limits to
// fs.nr_open when the bench may raise the hard limit (root), else the
// soft limit to the hard one. Children started afterwards inherit it, so
// the ringd the bench starts can hold as many sockets.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n > l.Max {
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}) == nil {
				return
			}
		}
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// noFileSpare is what the bench and ringd need besides one descriptor
// per connection: the database, listeners, the simulator's connections.
const noFileSpare = 512

// checkNoFile refuses a connection count the open-file limit cannot
// hold (after raiseNoFile): the bench holds one descriptor per connection,
// and so does the ringd it starts, which inherits the limit. Dials past
// the limit would fail with EMFILE and be retried until --timeout.
func checkNoFile(conns int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return nil // cannot tell: let the dials say
	}
	if need := uint64(conns) + noFileSpare; l.Cur < need {
		return fmt.Errorf("connections: %d connections need %d open files in the bench and in ringd, and the limit is %d "+
			"(raising the hard limit needs CAP_SYS_RESOURCE: ulimit -Hn, or prlimit)", conns, need, l.Cur)
	}
	return nil
}

// sampler reads ringd's /proc and /metrics every interval until stopped.
type sampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func (e *env) sample(ctx context.Context, every time.Duration, f func(t time.Duration)) *sampler {
	s := &sampler{stop: make(chan struct{})}
	start := time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
				f(time.Since(start))
			}
		}
	}()
	return s
}

func (s *sampler) close() {
	close(s.stop)
	s.wg.Wait()
}
