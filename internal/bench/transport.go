package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/ringd/ringd/internal/credentials"
)

// runTransport measures the ceiling that every APNs provider written in Go
// shares: a minimal client (golang.org/x/net/http2 over TLS, a client
// certificate, nothing persisted, no retries) sending alert pushes to the
// simulator as fast as it answers. Its CPU per request, read from this
// process's /proc entry, is what the transport alone costs; ringd's CPU
// per push (scenario push) can be read against it.
func runTransport(ctx context.Context, e *env, r *Result) error {
	o := e.o
	r.Params["requests"], r.Params["devices"], r.Params["streams"] = o.Pushes, o.Devices, o.Streams
	if e.sandboxURL == "" {
		return errors.New("transport: needs the separate simulator the bench starts (not --dev or --url)")
	}
	r.Params["client"] = o.Client
	tlsCfg, err := e.minimalTLS(ctx)
	if err != nil {
		return err
	}
	tokens, err := e.mintDevices(ctx, o.Devices)
	if err != nil {
		return err
	}
	var send func(int) error
	switch o.Client {
	case "framer":
		fc, err := dialFramer(ctx, strings.TrimPrefix(e.sandboxURL, "https://"), tlsCfg)
		if err != nil {
			return fmt.Errorf("transport: dial: %w", err)
		}
		defer fc.Close()
		send = framerSend(ctx, fc, tokens)
	case "", "x/net":
		hc := &http.Client{Transport: &http2.Transport{TLSClientConfig: tlsCfg}}
		defer hc.CloseIdleConnections()
		send = xnetSend(ctx, hc, e.sandboxURL, tokens)
	default:
		return fmt.Errorf("transport: --client %q: want x/net or framer", o.Client)
	}
	// Warm up: the TLS handshake and the first SETTINGS are not the
	// steady state being measured.
	if err := sendAll(ctx, min(1000, o.Pushes), o.Streams, send, nil, nil); err != nil {
		return fmt.Errorf("transport warm-up: %w", err)
	}
	return measureTransport(ctx, e, r, send)
}

// transportHeaders are the request headers of every push, the same for
// both clients.
var transportHeaders = [][2]string{
	{"apns-topic", bundleID}, {"apns-push-type", "alert"}, {"apns-priority", "10"}, {"apns-expiration", "0"},
}

func framerSend(ctx context.Context, fc *framerConn, tokens []string) func(int) error {
	return func(i int) error {
		status, body, err := fc.Do(ctx, "/3/device/"+tokens[i%len(tokens)], transportHeaders, transportPayload)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("APNs simulator answered %d %s", status, body)
		}
		return nil
	}
}

func xnetSend(ctx context.Context, hc *http.Client, base string, tokens []string) func(int) error {
	return func(i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/3/device/"+tokens[i%len(tokens)],
			bytes.NewReader(transportPayload))
		if err != nil {
			return err
		}
		for _, kv := range transportHeaders {
			req.Header.Set(kv[0], kv[1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			return fmt.Errorf("APNs simulator answered over %s, not HTTP/2", resp.Proto)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("APNs simulator answered %s", resp.Status)
		}
		return nil
	}
}

// measureTransport sends o.Pushes requests and reports the client's CPU
// per request, the throughput and the latencies.
func measureTransport(ctx context.Context, e *env, r *Result, send func(int) error) error {
	o := e.o
	var lat durations
	var done atomic.Int64
	self := os.Getpid()
	p0 := sampleProc(self)
	start := time.Now()
	err := sendAll(ctx, o.Pushes, o.Streams, send, &lat, func() {
		if n := done.Add(1); n%1000 == 0 {
			e.progress.set("transport: %d/%d requests answered, %.1fs", n, o.Pushes, time.Since(start).Seconds())
		}
	})
	elapsed := time.Since(start)
	p1 := sampleProc(self)
	if err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	r.add("requests answered 200", float64(o.Pushes), "requests", "")
	r.add("throughput", float64(o.Pushes)/elapsed.Seconds(), "requests/s", "answered ÷ wall time")
	if p0.ok && p1.ok {
		cpu := p1.cpu - p0.cpu
		r.add("client CPU per request", float64(cpu.Microseconds())/float64(o.Pushes), "µs", "utime+stime delta of the bench process from /proc ÷ requests")
		r.add("client CPU utilisation", cpu.Seconds()/elapsed.Seconds()*100, "% of a core", "")
	}
	r.add("request → response p50", lat.quantile(0.5), "ms", "exact, client side")
	r.add("request → response p99", lat.quantile(0.99), "ms", "exact, client side")
	r.note("the client is this bench process: pin it with taskset (e.g. taskset -c 0 ringd bench transport --sim-cpus 1) so that it runs on one core")
	r.note("the APNs simulator runs in its own process (pid %d)", e.simPID)
	return nil
}

var transportPayload = []byte(`{"aps":{"alert":{"title":"bench","body":"a push from ringd bench"}}}`)

// sendAll runs send(0..n-1) with streams calls in flight and returns the
// first error; lat, when set, gets each call's duration.
func sendAll(ctx context.Context, n, streams int, send func(int) error, lat *durations, each func()) error {
	var (
		next  atomic.Int64
		first error
		once  sync.Once
		wg    sync.WaitGroup
	)
	for range min(streams, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := send(i); err != nil {
					once.Do(func() { first = err })
					return
				}
				if lat != nil {
					lat.add(time.Since(t))
				}
				if each != nil {
					each()
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// minimalTLS is the TLS configuration of a client with a simulator-issued
// development certificate, trusting the simulator's CA: what a provider
// needs at the least.
func (e *env) minimalTLS(ctx context.Context) (*tls.Config, error) {
	issued, err := e.sim.IssueCertificate(ctx, bundleID, "development", false)
	if err != nil {
		return nil, fmt.Errorf("simulator certificate: %w", err)
	}
	p12, err := credentials.ParseP12(issued.P12, issued.Password, time.Now())
	if err != nil {
		return nil, fmt.Errorf("simulator certificate: %w", err)
	}
	caPEM, err := os.ReadFile(e.caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no CA certificate in %s", e.caFile)
	}
	// With --client x/net, the client is x/net's Transport, as
	// sideshow/apns2 (under gorush) uses: net/http's bundled HTTP/2 behind
	// http.Transport measured ~25% more CPU per request here, so it would
	// put the ceiling higher than it is.
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{p12.Certificate}, MinVersion: tls.VersionTLS12}, nil
}

// mintDevices mints n development alert tokens in the simulator, without
// registering them anywhere.
func (e *env) mintDevices(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, n)
	err := sendAll(ctx, n, 16, func(i int) error {
		tok, err := e.sim.MintDevice(ctx, bundleID, "development", "alert")
		tokens[i] = tok
		return err
	}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("mint devices: %w", err)
	}
	return tokens, nil
}
