package calls

import (
	"github.com/prometheus/client_golang/prometheus"

	promreg "github.com/ringd/ringd/internal/metrics"
)

// metrics of the call service. Without a Registerer they are kept but not
// exported.
type metrics struct {
	calls   *prometheus.CounterVec
	ringing prometheus.Gauge
	events  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_calls_total", Help: "Calls ended, by end reason.",
		}, []string{"end_reason"}),
		ringing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringd_calls_ringing", Help: "Calls ringing now.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_call_events_total", Help: "Call events produced, by type (once per change, not per device).",
		}, []string{"type"}),
	}
	if reg != nil {
		m.calls = promreg.Register(reg, m.calls)
		m.ringing = promreg.Register(reg, m.ringing)
		m.events = promreg.Register(reg, m.events)
	}
	return m
}
