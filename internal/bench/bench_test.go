package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	ringdBin  string
	buildErr  error
)

// binary builds cmd/ringd once: the bench starts it as its server.
func ringdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ringd-bench-test-")
		if err != nil {
			buildErr = err
			return
		}
		ringdBin = filepath.Join(dir, "ringd")
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		}
		out, err := exec.Command(goTool, "build", "-o", ringdBin, "github.com/ringd/ringd/cmd/ringd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ringd: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ringdBin
}

func metric(t *testing.T, r *Result, name string) float64 {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("no metric %q in %+v", name, r.Metrics)
	return 0
}

// TestScenarios runs each scenario at a tiny size: the tool works end to
// end. No timing is asserted, only counts.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ringd processes")
	}
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	tests := []struct {
		scenario string
		opts     Options
		check    func(t *testing.T, r *Result)
	}{
		{"push", Options{Pushes: 50, Devices: 10, Batch: 20, CPUProfile: profile}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "delivered (APNs 200)"); got != 50 {
				t.Errorf("delivered %v, want 50", got)
			}
			if got := metric(t, r, "ringd allocations per push"); got <= 0 {
				t.Errorf("allocations per push %v, want > 0", got)
			}
			if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("--cpuprofile: %d bytes, %v; want a gzipped pprof profile", len(b), err)
			}
		}},
		{"call-offline", Options{Rate: 20, Duration: 2 * time.Second, Callees: 10}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "invites started"); got != 40 {
				t.Errorf("invites %v, want 40", got)
			}
			if got := metric(t, r, "invite errors"); got != 0 {
				t.Errorf("invite errors %v: %v", got, r.Notes)
			}
			if got := metric(t, r, "ringd allocated per invite"); got <= 0 {
				t.Errorf("allocated per invite %v KiB, want > 0", got)
			}
		}},
		{"call-online", Options{Rate: 20, Duration: 2 * time.Second, Callees: 5}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "calls completed") + metric(t, r, "invites skipped (all pairs busy)"); got != 40 {
				t.Errorf("calls completed+skipped %v, want 40 (%v)", got, r.Notes)
			}
			if got := metric(t, r, "ringd allocations per call"); got <= 0 {
				t.Errorf("allocations per call %v, want > 0", got)
			}
		}},
		{"transport", Options{Pushes: 200, Devices: 10, Streams: 8}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "requests answered 200"); got != 200 {
				t.Errorf("answered %v, want 200", got)
			}
		}},
		{"transport", Options{Pushes: 200, Devices: 10, Streams: 8, Client: "framer"}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "requests answered 200"); got != 200 {
				t.Errorf("framer: answered %v, want 200", got)
			}
		}},
		{"connections", Options{Conns: 50, Hold: time.Second, Storm: time.Second, SourceIPs: 3}, func(t *testing.T, r *Result) {
			if got := metric(t, r, "alive at end of hold"); got != 50 {
				t.Errorf("alive %v, want 50", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			o := tt.opts
			o.Binary, o.Timeout = ringdBinary(t), 2*time.Minute
			r, err := Run(context.Background(), tt.scenario, o)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			var table, js bytes.Buffer
			if err := r.WriteTable(&table); err != nil || !strings.Contains(table.String(), "METRIC") {
				t.Errorf("table: %v\n%s", err, table.String())
			}
			if err := r.WriteJSON(&js); err != nil || !json.Valid(js.Bytes()) {
				t.Errorf("json: %v\n%s", err, js.String())
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://127.0.0.9:1": true, "http://[::1]:80": true, "http://localhost:8080": true,
		"http://10.0.0.1:8080": false, "http://example.com": false, "ftp://127.0.0.1": false, "http://0.0.0.0:80": false,
	} {
		if err := CheckLoopback(u); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	in := `# HELP x
x_bucket{source="api",le="0.001"} 0
x_bucket{source="api",le="0.01"} 50
x_bucket{source="api",le="0.1"} 100
x_bucket{source="api",le="+Inf"} 100
x_bucket{source="call",le="0.001"} 7
x_bucket{source="call",le="0.01"} 7
x_bucket{source="call",le="0.1"} 7
x_bucket{source="call",le="+Inf"} 7
y_total{result="delivered",reason=""} 3
y_total{result="unregistered",reason="Unregistered"} 2
`
	s, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	h := s.histogram("x", `source="api"`)
	if got := h.quantile(0.5); math.Abs(got-0.01) > 1e-9 {
		t.Errorf("p50 %v, want 0.01", got)
	}
	if got := h.quantile(0.75); math.Abs(got-0.055) > 1e-9 {
		t.Errorf("p75 %v, want 0.055", got)
	}
	if got := s.histogram("x").total(); got != 107 {
		t.Errorf("total %v, want 107", got)
	}
	if got := h.minus(h).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty quantile %v, want NaN", got)
	}
	if got := s.sum("y_total", `result="delivered"`); got != 3 {
		t.Errorf("delivered %v", got)
	}
	if got := s.sum("y_total"); got != 5 {
		t.Errorf("all %v", got)
	}
}

func TestProc(t *testing.T) {
	p := sampleProc(os.Getpid())
	if !p.ok || p.rss <= 0 || p.hwm < p.rss {
		t.Fatalf("sampleProc(self) = %+v", p)
	}
	if !p.io.ok {
		t.Skip("/proc/self/io is not readable here")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 3 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	q := sampleProc(os.Getpid())
	if got := q.io.writeCalls - p.io.writeCalls; got < 3 {
		t.Errorf("%d write syscalls counted for 3 writes", got)
	}
	if q.io.readCalls < p.io.readCalls || q.io.storageWrites < p.io.storageWrites {
		t.Errorf("counters went back: %+v then %+v", p.io, q.io)
	}
}

func TestMedian(t *testing.T) {
	run := func(cpu, rate float64, note string) *Result {
		r := &Result{Scenario: "push", Target: "t", Params: map[string]any{"pushes": 10}}
		r.add("cpu", cpu, "µs", "how")
		r.add("rate", rate, "pushes/s", "")
		r.note("%s", note)
		return r
	}
	tests := []struct {
		name     string
		runs     []*Result
		wantCPU  float64
		wantRate float64
	}{
		{"odd", []*Result{run(3, 10, "a"), run(1, 30, "a"), run(2, 20, "b")}, 2, 20},
		{"even", []*Result{run(4, 10, "a"), run(2, 30, "a")}, 3, 20},
		{"NaN left out", []*Result{run(math.NaN(), 10, "a"), run(5, 30, "a"), run(7, 20, "a")}, 6, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Median(tt.runs)
			if err != nil {
				t.Fatal(err)
			}
			if got := metric(t, m, "cpu"); got != tt.wantCPU {
				t.Errorf("cpu median %v, want %v", got, tt.wantCPU)
			}
			if got := metric(t, m, "rate"); got != tt.wantRate {
				t.Errorf("rate median %v, want %v", got, tt.wantRate)
			}
			if got := len(m.Metrics[0].Values); got != len(tt.runs) {
				t.Errorf("%d values kept, want %d", got, len(tt.runs))
			}
			if m.Params["runs"] != len(tt.runs) {
				t.Errorf("params %v", m.Params)
			}
			var table, js bytes.Buffer
			if err := m.WriteTable(&table); err != nil || !strings.Contains(table.String(), "MEDIAN") {
				t.Errorf("table: %v\n%s", err, table.String())
			}
			if err := m.WriteJSON(&js); err != nil || !json.Valid(js.Bytes()) {
				t.Errorf("json: %v\n%s", err, js.String())
			}
		})
	}
	if _, err := Median(nil); err == nil {
		t.Error("Median of no runs: no error")
	}
}

func TestCheckNoFile(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Skip(err)
	}
	if err := checkNoFile(10); err != nil && l.Cur >= 10+noFileSpare {
		t.Errorf("10 connections under a limit of %d: %v", l.Cur, err)
	}
	if l.Cur < math.MaxInt32 {
		if err := checkNoFile(int(l.Cur)); err == nil || !strings.Contains(err.Error(), "open files") {
			t.Errorf("as many connections as the limit (%d): %v, want an error naming open files", l.Cur, err)
		}
	}
}

func TestAddRuntime(t *testing.T) {
	before := series{"go_memstats_mallocs_total": 1000, "go_memstats_alloc_bytes_total": 1 << 20, "go_gc_duration_seconds_count": 3}
	after := series{"go_memstats_mallocs_total": 5000, "go_memstats_alloc_bytes_total": 3 << 20, "go_gc_duration_seconds_count": 11}
	tests := []struct {
		name          string
		before, after series
		n             int64
		d             time.Duration
		want          map[string]float64
		wantNote      bool
	}{
		{"per unit", before, after, 10, 4 * time.Second, map[string]float64{
			"ringd allocations per push": 400, "ringd allocated per push": 204.8, "ringd garbage collections": 2}, false},
		{"no runtime metrics", series{}, series{"ringd_pushes_total": 5}, 10, time.Second, map[string]float64{}, true},
		{"no work", before, after, 0, time.Second, map[string]float64{}, false},
		{"no time", before, after, 10, 0, map[string]float64{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Result{Params: map[string]any{}}
			addRuntime(r, tt.before, tt.after, tt.n, "push", tt.d)
			got := map[string]float64{}
			for _, m := range r.Metrics {
				got[m.Name] = m.Value
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("metrics %v, want %v", got, tt.want)
			}
			if (len(r.Notes) > 0) != tt.wantNote {
				t.Errorf("notes %q, want a note: %v", r.Notes, tt.wantNote)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	for unit, want := range map[string]string{"push": "pushes", "invite": "invites", "call": "calls"} {
		if got := plural(unit); got != want {
			t.Errorf("plural(%q) = %q, want %q", unit, got, want)
		}
	}
}
