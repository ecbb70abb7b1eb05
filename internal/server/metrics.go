package server

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func (s *Server) registerMetrics() {
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ringd_apns_open_connections", Help: "Open HTTP/2 connections to APNs.",
		}, func() float64 { return float64(s.apns.OpenConnections()) }),
		&certificateExpiry{s: s},
	)
}

// certificateExpiry reports, at each scrape, the seconds until each
// certificate expires, so an alert can fire weeks before pushes stop.
type certificateExpiry struct{ s *Server }

var certExpiryDesc = prometheus.NewDesc("ringd_certificate_expiry_seconds",
	"Seconds until the APNs certificate expires (negative once expired).",
	[]string{"sdkappid", "certificate_id", "environment", "bundle_id"}, nil)

func (c *certificateExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c *certificateExpiry) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	apps, err := c.s.store.Apps(ctx)
	if err != nil {
		c.s.log.Warn("metrics: list apps", "err", err)
		return
	}
	now := c.s.opts.Clock.Now()
	for _, app := range apps {
		certs, err := c.s.store.Certificates(ctx, app.SDKAppID)
		if err != nil {
			c.s.log.Warn("metrics: list certificates", "sdkappid", app.SDKAppID, "err", err)
			return
		}
		for _, cert := range certs {
			if cert.ExpiresAt.IsZero() {
				continue // p8 keys do not expire
			}
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, cert.ExpiresAt.Sub(now).Seconds(),
				strconv.FormatInt(app.SDKAppID, 10), strconv.FormatInt(cert.ID, 10), cert.Environment, cert.BundleID)
		}
	}
}
