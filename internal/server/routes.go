package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.api.Handler())
	mux.Handle("GET /v1/connect", s.gateway.Handler())
	mux.Handle("/console/", s.console.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.sim != nil {
		// The simulator's control API exists only in --dev: it mints
		// credentials and tokens, which no production server may offer.
		mux.Handle("/sim/v1/", s.sim.ControlHandler())
	}
	return mux
}

// readyz says whether the store answers; a load balancer stops sending
// traffic while it does not.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeText(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}
