package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// runConnections opens Conns idle WebSocket connections from SourceIPs
// 127.0.0.x addresses, holds them through heartbeats, then drops them all
// and reconnects them within Storm.
func runConnections(ctx context.Context, e *env, r *Result) error {
	o := e.o
	r.Params["conns"], r.Params["hold_s"], r.Params["storm_s"], r.Params["source_ips"] = o.Conns, o.Hold.Seconds(), o.Storm.Seconds(), o.SourceIPs
	if err := checkNoFile(o.Conns); err != nil {
		return err
	}
	const users = 1000 // connections are spread over this many users, several devices each
	sigs := make([]string, min(users, o.Conns))
	for i := range sigs {
		sigs[i] = e.userSig(fmt.Sprintf("cn%d", i))
	}
	src := func(i int) net.IP { return net.IPv4(127, 0, 0, byte(1+i%o.SourceIPs)) }
	conns := make([]*wsConn, o.Conns)
	var errs atomic.Int64
	var lastErr atomic.Value
	// open connects conn i, retrying with backoff until ctx ends.
	open := func(i int) {
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			c, err := dialWS(ctx, src(i), e.url, sigs[i%len(sigs)], fmt.Sprintf("d%d", i))
			if err == nil {
				conns[i] = c
				return
			}
			errs.Add(1)
			lastErr.Store(err.Error())
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
	if err := e.profileStart(ctx); err != nil {
		return err
	}
	before := sampleProc(e.pid)
	selfRSS0, _, _ := memStatus(os.Getpid())

	start := time.Now()
	var opened atomic.Int64
	parallel(o.Conns, 64, func(i int) {
		open(i)
		n := opened.Add(1)
		e.progress.set("connections: %d/%d open, %d errors, %.1fs", n, o.Conns, errs.Load(), time.Since(start).Seconds())
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	openTime := time.Since(start)
	openErrs := errs.Load()
	time.Sleep(2 * time.Second) // let the server settle its buffers
	afterOpen := sampleProc(e.pid)
	selfRSS1, _, _ := memStatus(os.Getpid())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	// Hold: idle, heartbeats only.
	holdStart := time.Now()
	for time.Since(holdStart) < o.Hold && ctx.Err() == nil {
		alive := 0
		for _, c := range conns {
			if c != nil && c.alive.Load() {
				alive++
			}
		}
		e.progress.set("connections: holding %d alive, %.0f/%.0fs", alive, time.Since(holdStart).Seconds(), o.Hold.Seconds())
		time.Sleep(500 * time.Millisecond)
	}
	afterHold := sampleProc(e.pid)
	holdTime := time.Since(holdStart)
	alive := 0
	for _, c := range conns {
		if c != nil && c.alive.Load() {
			alive++
		}
	}

	// Reconnect storm: drop all, then reconnect each at an even offset
	// within Storm.
	for _, c := range conns {
		if c != nil {
			c.drop()
		}
	}
	errs.Store(0)
	stormStart := time.Now()
	var back atomic.Int64
	parallel(o.Conns, 256, func(i int) {
		if w := time.Until(stormStart.Add(time.Duration(float64(o.Storm) * float64(i) / float64(o.Conns)))); w > 0 {
			time.Sleep(w)
		}
		open(i)
		n := back.Add(1)
		e.progress.set("storm: %d/%d back, %d errors, %.1fs", n, o.Conns, errs.Load(), time.Since(stormStart).Seconds())
	})
	stormTime := time.Since(stormStart)
	if err := e.profileStop(ctx, r); err != nil {
		return err
	}
	for _, c := range conns {
		if c != nil {
			c.drop()
		}
	}

	r.add("connections opened", float64(o.Conns), "conns", "")
	r.add("open time", openTime.Seconds(), "s", "64 dials in flight")
	r.add("open errors", float64(openErrs), "attempts", "retried")
	if before.ok && afterOpen.ok {
		r.add("ringd RSS before", float64(before.rss)/(1<<20), "MiB", "VmRSS")
		r.add("ringd RSS with all open", float64(afterOpen.rss)/(1<<20), "MiB", "VmRSS, 2s after the last opened")
		r.add("ringd RSS per connection", float64(afterOpen.rss-before.rss)/float64(o.Conns)/1024, "KiB", "(VmRSS after − before) ÷ conns")
		r.add("ringd CPU during hold", (afterHold.cpu-afterOpen.cpu).Seconds()/holdTime.Seconds()*100, "% of a core", "utime+stime delta ÷ hold time")
		r.add("ringd peak RSS", float64(afterHold.hwm)/(1<<20), "MiB", "VmHWM")
	}
	r.add("alive at end of hold", float64(alive), "conns", "")
	r.add("storm: time until all back", stormTime.Seconds(), "s", fmt.Sprintf("all dropped, reconnects spread over %v", o.Storm))
	r.add("storm: errors", float64(errs.Load()), "attempts", "failed dials/handshakes, each retried with backoff")
	if v := lastErr.Load(); v != nil {
		r.note("last connection error: %s", v)
	}
	r.add("bench RSS per connection", float64(selfRSS1-selfRSS0)/float64(o.Conns)/1024, "KiB", "the bench's own VmRSS delta ÷ conns")
	r.add("bench Go heap in use", float64(ms.HeapInuse)/(1<<20), "MiB", "runtime.MemStats with all open")
	r.note("idle clients answer the server's WebSocket pings (protocol §6); they send no application heartbeats")
	return nil
}

// parallel runs f(0..n-1) with at most k at once.
func parallel(n, k int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(k, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
