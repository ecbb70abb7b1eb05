package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	promreg "github.com/ringd/ringd/internal/metrics"
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
		m.connections = promreg.Register(reg, m.connections)
		m.frames = promreg.Register(reg, m.frames)
		m.closes = promreg.Register(reg, m.closes)
	}
	return m
}
