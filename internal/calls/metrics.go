package calls

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
		m.calls = register(reg, m.calls)
		m.ringing = register(reg, m.ringing)
		m.events = register(reg, m.events)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second Service in the same process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
