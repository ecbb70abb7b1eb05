package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// openDebug listens on --debug-addr for Go's profiles. They get a listener
// of their own so that the API's limits, timeouts and routes never apply
// to a 30-second CPU profile, and so that the API never serves them.
func (s *Server) openDebug(context.Context) error {
	if s.cfg.DebugAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return fmt.Errorf("listen on --debug-addr %s: %w", s.cfg.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.debugAddr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	s.closers = append(s.closers, srv.Close)
	s.log.Info("serving profiles", "url", "http://"+s.debugAddr+"/debug/pprof/")
	return nil
}

// DebugAddr is the address of the profiles listener ("" when off).
func (s *Server) DebugAddr() string { return s.debugAddr }
