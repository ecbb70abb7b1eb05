package push

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus series. A nil *Metrics records
// nothing, so tests and embedders need not register any.
type Metrics struct {
	pushes      *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	outboxDepth prometheus.Gauge
	// acceptToRequest is the call path's figure of merit: from accepting
	// a push to handing its first APNs request to the sender.
	acceptToRequest *prometheus.HistogramVec
	// groupSize shows whether outcomes share their commits: near 1 under
	// load means every send pays a commit of its own.
	groupSize *prometheus.HistogramVec
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_pushes_total",
			Help: "Deliveries that reached a final state, by result (classification, or expired) and reason.",
		}, []string{"result", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_push_attempts_total",
			Help: "Requests to APNs, by how ringd classified the answer.",
		}, []string{"classification"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringd_apns_request_duration_seconds",
			Help:    "Time from sending a request to APNs to its answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"environment"}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringd_push_outbox_depth",
			Help: "Pending deliveries in the outbox, sampled by the worker loop.",
		}),
		acceptToRequest: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringd_push_accept_to_request_seconds",
			Help:    "Time from accepting a push to handing a delivery's first APNs request to the sender, by source (api or call).",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"source"}),
		groupSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringd_push_group_commit_size",
			Help:    "Items written per store transaction by a group commit, by what they are: the workers' delivery outcomes, or pushes submitted one at a time (calls).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"items"}),
	}
	if reg != nil {
		reg.MustRegister(m.pushes, m.attempts, m.duration, m.outboxDepth, m.acceptToRequest, m.groupSize)
	}
	return m
}

func (m *Metrics) final(result, reason string) {
	if m != nil {
		m.pushes.WithLabelValues(result, reason).Inc()
	}
}

// finalN counts n deliveries that reached a final state together (Expire).
func (m *Metrics) finalN(result, reason string, n int) {
	if m != nil && n > 0 {
		m.pushes.WithLabelValues(result, reason).Add(float64(n))
	}
}

// firstRequest observes the wait between accepting a push and its first
// request to APNs; a negative wait (clocks of two nodes) counts as zero.
func (m *Metrics) firstRequest(source string, wait time.Duration) {
	if m != nil {
		m.acceptToRequest.WithLabelValues(source).Observe(max(wait, 0).Seconds())
	}
}

func (m *Metrics) attempt(classification, environment string, latency time.Duration, sent bool) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(classification).Inc()
	if sent {
		m.duration.WithLabelValues(environment).Observe(latency.Seconds())
	}
}

func (m *Metrics) depth(n int) {
	if m != nil {
		m.outboxDepth.Set(float64(n))
	}
}

// group returns the observer of one group commit's sizes (nil: none).
func (m *Metrics) group(items string) func(int) {
	if m == nil {
		return nil
	}
	h := m.groupSize.WithLabelValues(items)
	return func(n int) { h.Observe(float64(n)) }
}
