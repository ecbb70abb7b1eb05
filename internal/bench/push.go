package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringd/ringd/client"
)

// runPush sends Pushes alert pushes to Devices users (one device each)
// through the batch push API and waits until APNs accepted them all.
func runPush(ctx context.Context, e *env, r *Result) error {
	o := e.o
	r.Params["pushes"], r.Params["devices"], r.Params["concurrency"], r.Params["batch"] = o.Pushes, o.Devices, o.Concurrency, o.Batch
	name := func(i int) string { return fmt.Sprintf("pu%d", i) }
	if _, err := e.register(ctx, o.Devices, "alert", name); err != nil {
		return err
	}
	before, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	delivered0 := before.sum("ringd_pushes_total", `result="delivered"`)
	final0 := before.sum("ringd_pushes_total")
	p0 := sampleProc(e.pid)

	// Batches: users cycle over the devices, Batch per request.
	type batch struct{ users []string }
	batches := make(chan batch)
	go func() {
		defer close(batches)
		for sent := 0; sent < o.Pushes; {
			n := min(o.Batch, o.Pushes-sent)
			b := batch{users: make([]string, n)}
			for j := range n {
				b.users[j] = name((sent + j) % o.Devices)
			}
			sent += n
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
		}
	}()

	var accepted, delivered, final atomic.Int64
	var maxDepth, maxRSSWithBacklog atomic.Int64
	var sendErr error
	var errOnce sync.Once
	if err := e.profileStart(ctx); err != nil {
		return err
	}
	start := time.Now()
	var intakeDone time.Duration
	var mu sync.Mutex
	s := e.sample(ctx, 250*time.Millisecond, func(t time.Duration) {
		m, err := scrape(ctx, e.hc, e.url)
		if err != nil {
			return
		}
		d := int64(m.sum("ringd_pushes_total", `result="delivered"`) - delivered0)
		delivered.Store(d)
		final.Store(int64(m.sum("ringd_pushes_total") - final0))
		depth := m.sum("ringd_push_outbox_depth")
		maxDepth.Store(max(maxDepth.Load(), int64(depth)))
		rss := sampleProc(e.pid).rss
		maxRSSWithBacklog.Store(max(maxRSSWithBacklog.Load(), int64(rss)))
		mu.Lock()
		r.Series["rss_mib"] = append(r.Series["rss_mib"], Point{T: t.Seconds(), V: float64(rss) / (1 << 20)})
		r.Series["outbox_depth"] = append(r.Series["outbox_depth"], Point{T: t.Seconds(), V: depth})
		r.Series["delivered"] = append(r.Series["delivered"], Point{T: t.Seconds(), V: float64(d)})
		mu.Unlock()
		e.progress.set("push: %d/%d accepted by ringd, %d delivered by APNs, outbox %0.f, %.1fs", accepted.Load(), o.Pushes, d, depth, t.Seconds())
	})
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				for {
					res, err := e.admin.Send(ctx, e.app.SDKAppID, client.Push{Users: b.users, Title: "bench", Body: "a push from ringd bench"})
					if ce, ok := err.(*client.Error); ok && ce.Status == 503 && ctx.Err() == nil {
						time.Sleep(100 * time.Millisecond) // outbox_full: back off and retry
						continue
					}
					if err != nil {
						errOnce.Do(func() { sendErr = err })
						return
					}
					accepted.Add(int64(max(len(res.PushIDs), 1)))
					break
				}
			}
		}()
	}
	wg.Wait()
	intakeDone = time.Since(start)
	if sendErr != nil {
		s.close()
		return fmt.Errorf("push API: %w", sendErr)
	}
	// Wait until every delivery reached a final state.
	err = waitFor(ctx, 50*time.Millisecond, func() error {
		m, err := scrape(ctx, e.hc, e.url)
		if err != nil {
			return err
		}
		if f := m.sum("ringd_pushes_total") - final0; f < float64(o.Pushes) {
			return fmt.Errorf("%0.f of %d deliveries final", f, o.Pushes)
		}
		return nil
	})
	elapsed := time.Since(start)
	s.close()
	if err != nil {
		return err
	}
	if err := e.profileStop(ctx, r); err != nil {
		return err
	}
	p1 := sampleProc(e.pid)
	after, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	d := after.sum("ringd_pushes_total", `result="delivered"`) - delivered0
	r.add("pushes accepted by the API", float64(accepted.Load()), "pushes", "sum of push_ids in batch answers")
	r.add("delivered (APNs 200)", d, "pushes", `ringd_pushes_total{result="delivered"} delta`)
	r.add("not delivered", after.sum("ringd_pushes_total")-final0-d, "pushes", "other results of ringd_pushes_total")
	r.add("intake rate", float64(accepted.Load())/intakeDone.Seconds(), "pushes/s", "accepted by the API ÷ time to submit")
	r.add("throughput", d/elapsed.Seconds(), "pushes/s", "delivered ÷ time from the first request to the last final state")
	r.add("wall time", elapsed.Seconds(), "s", "")
	if p0.ok && p1.ok {
		r.add("ringd CPU per push", float64((p1.cpu-p0.cpu).Microseconds())/float64(o.Pushes), "µs", "utime+stime delta of ringd from /proc ÷ pushes")
		r.add("ringd CPU utilisation", (p1.cpu-p0.cpu).Seconds()/elapsed.Seconds()*100, "% of a core", "")
		r.add("ringd peak RSS", float64(p1.hwm)/(1<<20), "MiB", "VmHWM (whole process life, setup included)")
		r.add("ringd RSS at end", float64(p1.rss)/(1<<20), "MiB", "VmRSS")
		addIO(r, p0, p1, int64(o.Pushes), "push")
	} else {
		r.note("no /proc readings of ringd (give --pid)")
	}
	addRuntime(r, before, after, int64(o.Pushes), "push", p1.at.Sub(p0.at))
	if e.simPID != 0 {
		r.note("the APNs simulator runs in its own process (pid %d): ringd's CPU excludes it", e.simPID)
	} else if e.o.URL == "" {
		r.note("--dev: the simulator runs inside ringd, so its CPU and RSS count as ringd's")
	}
	r.add("max outbox depth", float64(maxDepth.Load()), "deliveries", "ringd_push_outbox_depth sampled every 250ms")
	r.add("ringd max RSS while sending", float64(maxRSSWithBacklog.Load())/(1<<20), "MiB", "VmRSS sampled every 250ms from the first request (series rss_mib in --json)")
	h := after.histogram("ringd_push_accept_to_request_seconds", `source="api"`).minus(before.histogram("ringd_push_accept_to_request_seconds", `source="api"`))
	addQuantiles(r, "accept → APNs request", h, "ringd_push_accept_to_request_seconds{source=api}, estimated from buckets", 0.5, 0.99)
	h = after.histogram("ringd_apns_request_duration_seconds").minus(before.histogram("ringd_apns_request_duration_seconds"))
	addQuantiles(r, "APNs request → response", h, "ringd_apns_request_duration_seconds, estimated from buckets", 0.5, 0.99)
	r.note("accept → APNs response ≈ accept → request + request → response (two histograms; their quantiles do not add exactly)")
	return nil
}

func addQuantiles(r *Result, name string, h histogram, how string, qs ...float64) {
	for _, q := range qs {
		v := h.quantile(q)
		r.add(fmt.Sprintf("%s p%s", name, pct(q)), v*1000, "ms", how)
	}
}

func pct(q float64) string {
	switch q {
	case 0.5:
		return "50"
	case 0.99:
		return "99"
	case 0.999:
		return "99.9"
	}
	return fmt.Sprint(q * 100)
}
