package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"
	"sync"
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
	var cpu cpuProfile
	mux.HandleFunc("POST /debug/cpuprofile/start", cpu.start)
	mux.HandleFunc("POST /debug/cpuprofile/stop", cpu.stop)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.debugAddr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	s.closers = append(s.closers, srv.Close)
	s.log.Info("serving profiles", "url", "http://"+s.debugAddr+"/debug/pprof/")
	return nil
}

// DebugAddr is the address of the profiles listener ("" when off).
func (s *Server) DebugAddr() string { return s.debugAddr }

// cpuProfile is a CPU profile started and stopped by two requests. The
// standard /debug/pprof/profile needs its duration up front; a load test
// knows only afterwards when its measured phase ended (ringd bench
// --cpuprofile profiles exactly that phase).
type cpuProfile struct {
	mu  sync.Mutex
	buf *bytes.Buffer // nil when not profiling
}

func (p *cpuProfile) start(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf != nil {
		http.Error(w, "a CPU profile is already running", http.StatusConflict)
		return
	}
	buf := &bytes.Buffer{}
	if err := runtimepprof.StartCPUProfile(buf); err != nil {
		http.Error(w, "cannot start a CPU profile: "+err.Error(), http.StatusConflict)
		return
	}
	p.buf = buf
	w.WriteHeader(http.StatusNoContent)
}

func (p *cpuProfile) stop(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	runtimepprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(p.buf.Bytes())
	p.buf = nil
}
