package console

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The series the dashboard reads from the server's registry.
const (
	metricPushes       = "ringd_pushes_total"
	metricAPNSLatency  = "ringd_apns_request_duration_seconds"
	metricOutbox       = "ringd_push_outbox_depth"
	metricConnections  = "ringd_gateway_connections"
	metricRinging      = "ringd_calls_ringing"
	metricCertExpiry   = "ringd_certificate_expiry_seconds"
	resultDelivered    = "delivered"
	expiringSoonWithin = expiryWarningDays * 24 * time.Hour
)

// sample is the registry's state at one moment: counters as they were
// (cumulative), gauges as they were.
type sample struct {
	at      time.Time
	pushes  map[string]float64    // result -> deliveries
	reasons map[[2]string]float64 // {result, reason} -> deliveries, results other than delivered
	bounds  []float64             // APNs latency histogram upper bounds (seconds)
	buckets []float64             // cumulative counts per bound, then the total (+Inf)
	outbox  float64
	conns   float64
	ringing float64
}

// sampler keeps an hour of samples in a ring buffer, so the dashboard can
// draw rates and percentiles without an external time-series database.
type sampler struct {
	g     prometheus.Gatherer
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	samples []sample // oldest first
	max     int
	wrapped bool // older samples were dropped: the first one is the baseline
}

func newSampler(g prometheus.Gatherer, every, window time.Duration, now func() time.Time) *sampler {
	return &sampler{g: g, every: every, now: now, max: int(window/every) + 1}
}

func (s *sampler) run(ctx context.Context) {
	if s.g == nil {
		return
	}
	s.add(s.take())
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.add(s.take())
		}
	}
}

func (s *sampler) add(x sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, x)
	if len(s.samples) > s.max {
		s.samples = slices.Delete(s.samples, 0, len(s.samples)-s.max)
		s.wrapped = true
	}
}

// take gathers the registry once. A failed gather still returns what it
// could read (the registry returns partial results with the error).
func (s *sampler) take() sample {
	x, _ := s.gather()
	return x
}

func (s *sampler) gather() (sample, []*dto.MetricFamily) {
	x := sample{at: s.now(), pushes: map[string]float64{}, reasons: map[[2]string]float64{}}
	if s.g == nil {
		return x, nil
	}
	mfs, _ := s.g.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case metricPushes:
			for _, m := range mf.GetMetric() {
				result, reason := label(m, "result"), label(m, "reason")
				v := m.GetCounter().GetValue()
				x.pushes[result] += v
				if result != resultDelivered {
					x.reasons[[2]string{result, reason}] += v
				}
			}
		case metricAPNSLatency:
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				if x.bounds == nil {
					for _, b := range h.GetBucket() {
						x.bounds = append(x.bounds, b.GetUpperBound())
					}
					x.buckets = make([]float64, len(x.bounds)+1)
				}
				if len(h.GetBucket()) != len(x.bounds) {
					continue // labels with other buckets cannot be summed; there are none today
				}
				for i, b := range h.GetBucket() {
					x.buckets[i] += float64(b.GetCumulativeCount())
				}
				x.buckets[len(x.bounds)] += float64(h.GetSampleCount())
			}
		case metricOutbox:
			x.outbox = sumGauge(mf)
		case metricConnections:
			x.conns = sumGauge(mf)
		case metricRinging:
			x.ringing = sumGauge(mf)
		}
	}
	return x, mfs
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sumGauge(mf *dto.MetricFamily) float64 {
	var v float64
	for _, m := range mf.GetMetric() {
		v += m.GetGauge().GetValue()
	}
	return v
}

// quantile estimates the q-quantile from cumulative bucket counts (the last
// entry is the total), interpolating linearly inside a bucket as
// Prometheus' histogram_quantile does. ok is false without observations.
func quantile(q float64, bounds, cum []float64) (float64, bool) {
	if len(cum) == 0 || len(cum) != len(bounds)+1 || cum[len(cum)-1] <= 0 {
		return 0, false
	}
	rank := q * cum[len(cum)-1]
	i := sort.Search(len(cum), func(i int) bool { return cum[i] >= rank })
	if i >= len(bounds) {
		return bounds[len(bounds)-1], true // in the +Inf bucket: the highest finite bound
	}
	lower, prev := 0.0, 0.0
	if i > 0 {
		lower, prev = bounds[i-1], cum[i-1]
	}
	if cum[i] == prev {
		return bounds[i], true
	}
	return lower + (bounds[i]-lower)*(rank-prev)/(cum[i]-prev), true
}

func diff(a, b []float64) []float64 {
	if len(a) != len(b) {
		return b // the baseline had no histogram yet
	}
	out := make([]float64, len(b))
	for i := range b {
		out[i] = b[i] - a[i]
	}
	return out
}

// dashboardData is what the dashboard page draws.
type dashboardData struct {
	IntervalSeconds float64        `json:"interval_seconds"`
	Results         []string       `json:"results"`
	Points          []point        `json:"points"`
	Window          windowStats    `json:"window"`
	TopReasons      []reasonCount  `json:"top_reasons"`
	Now             gauges         `json:"now"`
	Expiring        []expiringCert `json:"expiring"`
}

// point is one interval between two samples.
type point struct {
	T         int64              `json:"t"` // end of the interval, unix ms
	PerMinute map[string]float64 `json:"per_minute"`
	P50       *float64           `json:"p50_ms"`
	P95       *float64           `json:"p95_ms"`
	P99       *float64           `json:"p99_ms"`
	gauges
}

type gauges struct {
	Outbox      float64 `json:"outbox"`
	Connections float64 `json:"connections"`
	Ringing     float64 `json:"ringing"`
}

type windowStats struct {
	Seconds  float64            `json:"seconds"`
	Pushes   map[string]float64 `json:"pushes"`
	Requests float64            `json:"apns_requests"`
	P50      *float64           `json:"p50_ms"`
	P90      *float64           `json:"p90_ms"`
	P99      *float64           `json:"p99_ms"`
}

type reasonCount struct {
	Result string  `json:"result"`
	Reason string  `json:"reason"`
	Count  float64 `json:"count"`
}

type expiringCert struct {
	SDKAppID      int64   `json:"sdkappid"`
	CertificateID int64   `json:"certificate_id"`
	Environment   string  `json:"environment"`
	BundleID      string  `json:"bundle_id"`
	DaysLeft      float64 `json:"days_left"`
}

func msPtr(seconds float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	v := math.Round(seconds*1e5) / 100 // ms, two decimals
	return &v
}

// data builds the dashboard from the stored samples plus one taken now, so
// the page is current even between samples.
func (s *sampler) data() dashboardData {
	live, mfs := s.gather()
	s.mu.Lock()
	xs := append(slices.Clone(s.samples), live)
	wrapped := s.wrapped
	s.mu.Unlock()

	d := dashboardData{IntervalSeconds: s.every.Seconds(), Now: gauges{live.outbox, live.conns, live.ringing}, Points: []point{}}
	results := map[string]bool{}
	for _, x := range xs {
		for r := range x.pushes {
			results[r] = true
		}
	}
	for r := range results {
		d.Results = append(d.Results, r)
	}
	slices.SortFunc(d.Results, func(a, b string) int { // delivered first, then by name
		if (a == resultDelivered) != (b == resultDelivered) {
			if a == resultDelivered {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})

	for i := 1; i < len(xs); i++ {
		a, b := xs[i-1], xs[i]
		secs := b.at.Sub(a.at).Seconds()
		if secs <= 0 {
			continue
		}
		p := point{T: b.at.UnixMilli(), PerMinute: map[string]float64{}, gauges: gauges{b.outbox, b.conns, b.ringing}}
		for r, v := range b.pushes {
			if dv := v - a.pushes[r]; dv > 0 {
				p.PerMinute[r] = math.Round(dv/secs*60*100) / 100
			}
		}
		buckets := diff(a.buckets, b.buckets)
		p.P50 = msPtr(quantile(0.50, b.bounds, buckets))
		p.P95 = msPtr(quantile(0.95, b.bounds, buckets))
		p.P99 = msPtr(quantile(0.99, b.bounds, buckets))
		d.Points = append(d.Points, p)
	}

	// The window: since the oldest sample once an hour is kept, else since
	// the process started (counters start at zero).
	base := sample{pushes: map[string]float64{}, reasons: map[[2]string]float64{}}
	if wrapped && len(xs) > 1 {
		base = xs[0]
	}
	d.Window.Seconds = s.every.Seconds() * float64(len(xs)-1)
	if wrapped && len(xs) > 1 {
		d.Window.Seconds = live.at.Sub(xs[0].at).Seconds()
	}
	d.Window.Pushes = map[string]float64{}
	for r, v := range live.pushes {
		d.Window.Pushes[r] = v - base.pushes[r]
	}
	buckets := diff(base.buckets, live.buckets)
	if len(buckets) > 0 {
		d.Window.Requests = buckets[len(buckets)-1]
	}
	d.Window.P50 = msPtr(quantile(0.50, live.bounds, buckets))
	d.Window.P90 = msPtr(quantile(0.90, live.bounds, buckets))
	d.Window.P99 = msPtr(quantile(0.99, live.bounds, buckets))
	for k, v := range live.reasons {
		if n := v - base.reasons[k]; n > 0 {
			d.TopReasons = append(d.TopReasons, reasonCount{Result: k[0], Reason: k[1], Count: n})
		}
	}
	slices.SortFunc(d.TopReasons, func(a, b reasonCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		if a.Reason < b.Reason {
			return -1
		}
		return 1
	})
	if len(d.TopReasons) > 10 {
		d.TopReasons = d.TopReasons[:10]
	}
	d.Expiring = expiring(mfs)
	return d
}

// expiring lists certificates that expire within the warning period.
func expiring(mfs []*dto.MetricFamily) []expiringCert {
	out := []expiringCert{}
	for _, mf := range mfs {
		if mf.GetName() != metricCertExpiry {
			continue
		}
		for _, m := range mf.GetMetric() {
			secs := m.GetGauge().GetValue()
			if secs > expiringSoonWithin.Seconds() {
				continue
			}
			app, _ := strconv.ParseInt(label(m, "sdkappid"), 10, 64)
			id, _ := strconv.ParseInt(label(m, "certificate_id"), 10, 64)
			out = append(out, expiringCert{SDKAppID: app, CertificateID: id, Environment: label(m, "environment"),
				BundleID: label(m, "bundle_id"), DaysLeft: math.Floor(secs / 86400)})
		}
	}
	slices.SortFunc(out, func(a, b expiringCert) int {
		switch {
		case a.DaysLeft < b.DaysLeft:
			return -1
		case a.DaysLeft > b.DaysLeft:
			return 1
		}
		return int(a.CertificateID - b.CertificateID)
	})
	return out
}

func (c *Console) dashboardPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, r, s, http.StatusOK, "dashboard", pageData{Title: "Dashboard", Nav: "dashboard"})
	return nil
}

func (c *Console) dashboardData(w http.ResponseWriter, r *http.Request, s *session) error {
	d := c.sampler.data()
	// Certificates of apps the principal may not see stay hidden.
	kept := d.Expiring[:0]
	for _, e := range d.Expiring {
		if s.principal.mayUseApp(e.SDKAppID) {
			kept = append(kept, e)
		}
	}
	d.Expiring = kept
	writeJSON(w, http.StatusOK, d)
	return nil
}
