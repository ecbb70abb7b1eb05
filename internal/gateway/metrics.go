package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections prometheus.Gauge
	frames      *prometheus.CounterVec // type: client request types (+ "invalid") and server frame types
	closes      *prometheus.CounterVec // reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringd_gateway_connections", Help: "Live WebSocket sessions.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_gateway_frames_total",
			Help: "WebSocket frames by type: client request types (invalid: undecodable) and server frame types.",
		}, []string{"type"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringd_gateway_closes_total", Help: "Ended WebSocket sessions by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		m.connections = register(reg, m.connections)
		m.frames = register(reg, m.frames)
		m.closes = register(reg, m.closes)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second gateway on the same registry shares the series).
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
