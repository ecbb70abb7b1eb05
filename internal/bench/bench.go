// Package bench is `ringd bench`: a load generator that measures ringd's
// push path, call path and connection gateway on loopback, against a
// ringd it starts (and an APNs simulator in a process of its own) or one
// given by URL. See docs/performance.md.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Scenarios are the names Run accepts.
var Scenarios = []string{"push", "call-offline", "call-online", "connections", "transport"}

// Options configure a run. Zero values take the defaults of cmd/ringd.
type Options struct {
	Binary string // the ringd binary to start as the server (os.Args[0] in ringd bench)

	// A ringd to target instead of starting one: URL (loopback only),
	// its admin token, and optionally its pid for /proc readings and the
	// control API of the simulator it sends to (its own /sim/v1 in --dev).
	URL, AdminToken, SimURL string
	PID                     int

	// InProcessSim starts `ringd serve --dev` (simulator inside ringd)
	// instead of a separate `ringd apns-sim` process.
	InProcessSim bool
	// ServerCPUs and SimCPUs pin the children with taskset -c when set
	// (e.g. "0" and "1").
	ServerCPUs, SimCPUs string
	ServerArgs          []string // more flags for ringd serve
	// CPUProfile, when set, is the file for a CPU profile of the started
	// ringd over the scenario's measured phase.
	CPUProfile string

	Pushes, Devices, Concurrency, Batch int           // push
	Rate                                int           // call-*: invites per second
	Duration                            time.Duration // call-*
	Callees                             int           // call-*: pairs or callees
	Conns                               int           // connections
	Hold, Storm                         time.Duration // connections
	SourceIPs                           int           // connections: 127.0.0.x addresses to dial from
	Timeout                             time.Duration // the whole run's bound
	Streams                             int           // transport: requests in flight
	Client                              string        // transport: "x/net" (default) or "framer"

	Progress io.Writer // progress line, updated in place; nil: none
}

// Result is what a run measured; Table renders it, JSON marshals it.
type Result struct {
	Scenario string             `json:"scenario"`
	Target   string             `json:"target"`
	Params   map[string]any     `json:"params"`
	Metrics  []Metric           `json:"metrics"`
	Series   map[string][]Point `json:"series,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// Metric is one measured figure.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	How   string  `json:"how,omitempty"`
	// Values are the value of each run when several were combined by
	// Median; Value is then their median.
	Values []float64 `json:"values,omitempty"`
}

// Point is one sample of a series over time.
type Point struct {
	T float64 `json:"t_s"`
	V float64 `json:"v"`
}

func (r *Result) add(name string, v float64, unit, how string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, How: how})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Run runs one scenario.
func Run(ctx context.Context, scenario string, o Options) (*Result, error) {
	o.defaults()
	var run func(context.Context, *env, *Result) error
	switch scenario {
	case "push":
		run = runPush
	case "call-offline":
		run = runCallOffline
	case "call-online":
		run = runCallOnline
	case "connections":
		run = runConnections
	case "transport":
		run = runTransport
	default:
		return nil, fmt.Errorf("unknown scenario %q (one of %v)", scenario, Scenarios)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	raiseNoFile()
	e, err := newEnv(ctx, scenario, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	res := &Result{Scenario: scenario, Target: e.describe(), Params: map[string]any{}, Series: map[string][]Point{}}
	err = run(ctx, e, res)
	for _, l := range e.errorLines(3) {
		res.note("logged by %s", l)
	}
	return res, err
}

func (o *Options) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.Pushes, 20000)
	def(&o.Streams, 256)
	def(&o.Devices, 1000)
	def(&o.Concurrency, 4)
	def(&o.Batch, 1000)
	def(&o.Rate, 500)
	def(&o.Callees, 200)
	def(&o.Conns, 10000)
	def(&o.SourceIPs, 0)
	if o.SourceIPs == 0 {
		// 127.0.0.x addresses, 10k connections each: the ephemeral port
		// range is ~28k, and in the storm every dropped connection keeps
		// its port in TIME_WAIT (the client closed) while its successor
		// takes another. At 20k per address an 18.5k storm failed 2810
		// dials with EADDRINUSE.
		o.SourceIPs = max(1, (o.Conns+9999)/10000)
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Hold <= 0 {
		o.Hold = 30 * time.Second
	}
	if o.Storm <= 0 {
		o.Storm = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
}

// CheckLoopback refuses a target that is not on a loopback address: the
// bench floods what it points at.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: want http://127.0.0.1:PORT", rawURL)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: ringd bench targets loopback addresses only (127.0.0.0/8, ::1)", rawURL)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitFor polls cond every interval until it returns nil or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}

func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}
