package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringd/ringd/client"
)

// durations collects latencies; safe for concurrent use.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *durations) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// quantile is the exact q-quantile (nearest rank) in ms; NaN when empty.
func (s *durations) quantile(q float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return math.NaN()
	}
	slices.Sort(s.d)
	i := int(math.Ceil(q*float64(len(s.d)))) - 1
	return float64(s.d[max(i, 0)].Microseconds()) / 1000
}

func (s *durations) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

func (s *durations) report(r *Result, name, how string, qs ...float64) {
	for _, q := range qs {
		r.add(fmt.Sprintf("%s p%s", name, pct(q)), s.quantile(q), "ms", fmt.Sprintf("%s (n=%d)", how, s.len()))
	}
}

// atRate calls f(i) Rate times a second for Duration, each in its own
// goroutine, at most inflight at once; it returns how many it started
// and how many it skipped because inflight were busy (the rate was not
// held).
func atRate(ctx context.Context, rate int, d time.Duration, inflight int, f func(i int)) (started, skipped int) {
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	total := int(float64(rate) * d.Seconds())
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped++
			continue
		}
		started++
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}(i)
	}
	wg.Wait()
	return started, skipped
}

// runCallOffline starts calls over REST at a fixed rate to callees whose
// only device is a registered VoIP token (not connected): each invite is
// one VoIP push.
func runCallOffline(ctx context.Context, e *env, r *Result) error {
	o := e.o
	r.Params["rate"], r.Params["duration_s"], r.Params["callees"] = o.Rate, o.Duration.Seconds(), o.Callees
	callee := func(i int) string { return fmt.Sprintf("off%d", i) }
	tokens, err := e.register(ctx, o.Callees, "voip", callee)
	if err != nil {
		return err
	}
	before, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	if err := e.profileStart(ctx); err != nil {
		return err
	}
	p0 := sampleProc(e.pid)
	const callers = 64                                    // invites_per_minute is per caller (raised to 10000)
	every := max(1, o.Rate*int(o.Duration.Seconds())/200) // ~200 samples for → simulator received
	type sample struct{ callID, token string }
	var (
		mu      sync.Mutex
		samples []sample
		api     durations
		errs    atomic.Int64
		ok      atomic.Int64
		lastErr atomic.Value
	)
	start := time.Now()
	started, skipped := atRate(ctx, o.Rate, o.Duration, 512, func(i int) {
		t0 := time.Now()
		id, err := e.admin.StartCall(ctx, e.app.SDKAppID, client.StartCall{
			Caller: fmt.Sprintf("caller%d", i%callers), Invitees: []string{callee(i % o.Callees)}, Media: "audio", Timeout: 5,
		})
		if err != nil {
			errs.Add(1)
			lastErr.Store(err.Error())
			return
		}
		api.add(time.Since(t0))
		n := ok.Add(1)
		if i%every == 0 {
			mu.Lock()
			samples = append(samples, sample{id, tokens[i%o.Callees]})
			mu.Unlock()
		}
		e.progress.set("call-offline: %d calls started, %d errors, %.1fs", n, errs.Load(), time.Since(start).Seconds())
	})
	elapsed := time.Since(start)
	// Let the last pushes go out before reading the histograms.
	_ = waitFor(ctx, 50*time.Millisecond, func() error {
		m, err := scrape(ctx, e.hc, e.url)
		if err != nil {
			return err
		}
		h := m.histogram("ringd_push_accept_to_request_seconds", `source="call"`).minus(before.histogram("ringd_push_accept_to_request_seconds", `source="call"`))
		if h.total() < float64(ok.Load()) && time.Since(start) < o.Duration+30*time.Second {
			return errors.New("pushes still pending")
		}
		return nil
	})
	p1 := sampleProc(e.pid)
	if err := e.profileStop(ctx, r); err != nil {
		return err
	}
	after, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	r.add("invites started", float64(ok.Load()), "calls", "")
	r.add("invite errors", float64(errs.Load()), "calls", "")
	if v := lastErr.Load(); v != nil {
		r.note("last invite error: %s", v)
	}
	r.add("invites skipped (512 in flight)", float64(skipped), "calls", "the rate was not held when > 0")
	r.add("achieved rate", float64(started)/o.Duration.Seconds(), "invites/s", "")
	_ = elapsed
	h := after.histogram("ringd_push_accept_to_request_seconds", `source="call"`).minus(before.histogram("ringd_push_accept_to_request_seconds", `source="call"`))
	addQuantiles(r, "invite → APNs request", h, "ringd_push_accept_to_request_seconds{source=call}, estimated from buckets", 0.5, 0.99, 0.999)
	api.report(r, "REST POST /calls round trip", "client-side", 0.5, 0.99, 0.999)

	// → simulator received: the call's created_at to the inbox's received_at.
	var recv durations
	missing := 0
	for _, s := range samples {
		call, err := e.admin.Call(ctx, e.app.SDKAppID, s.callID)
		if err != nil {
			missing++
			continue
		}
		inbox, err := e.sim.Inbox(ctx, s.token)
		found := false
		for _, n := range inbox {
			if err == nil && bytes.Contains(n.Payload, []byte(s.callID)) {
				recv.add(n.ReceivedAt.Sub(call.CreatedAt))
				found = true
				break
			}
		}
		if !found {
			missing++
		}
	}
	recv.report(r, "invite → simulator received", "inbox received_at − call created_at, sampled", 0.5, 0.99, 0.999)
	if missing > 0 {
		r.note("%d of %d sampled calls had no push in the simulator's inbox (yet)", missing, len(samples))
	}
	if p0.ok && p1.ok {
		r.add("ringd CPU per invite", float64((p1.cpu-p0.cpu).Microseconds())/float64(max(ok.Load(), 1)), "µs", "utime+stime delta ÷ invites")
		r.add("ringd peak RSS", float64(p1.hwm)/(1<<20), "MiB", "VmHWM")
		addIO(r, p0, p1, ok.Load(), "invite")
	}
	addRuntime(r, before, after, ok.Load(), "invite", p1.at.Sub(p0.at))
	return nil
}

// pair is a connected caller and callee.
type pair struct {
	caller, callee *client.Conn
	calleeUser     string
}

// runCallOnline: calls between connected, foreground devices over the
// WebSocket: invite → callee's call.invited, accept → caller's
// call.accepted, then hang up. Each pair carries one call at a time.
func runCallOnline(ctx context.Context, e *env, r *Result) error {
	o := e.o
	r.Params["rate"], r.Params["duration_s"], r.Params["pairs"] = o.Rate, o.Duration.Seconds(), o.Callees
	free := make(chan *pair, o.Callees)
	var all []*client.Conn
	defer func() {
		for _, c := range all {
			_ = c.Close()
		}
	}()
	connect := func(user string) (*client.Conn, error) {
		c, err := client.Connect(ctx, client.ConnectOptions{BaseURL: e.url, UserSig: e.userSig(user), DeviceID: "dev-" + user, HTTPClient: e.hc, EventBuffer: 64})
		if err == nil {
			all = append(all, c)
		}
		return c, err
	}
	for i := range o.Callees {
		a, err := connect(fmt.Sprintf("ona%d", i))
		if err != nil {
			return fmt.Errorf("connect caller: %w", err)
		}
		b, err := connect(fmt.Sprintf("onb%d", i))
		if err != nil {
			return fmt.Errorf("connect callee: %w", err)
		}
		free <- &pair{a, b, fmt.Sprintf("onb%d", i)}
		e.progress.set("setup: %d/%d pairs connected", i+1, o.Callees)
	}
	before, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	if err := e.profileStart(ctx); err != nil {
		return err
	}
	p0 := sampleProc(e.pid)
	var invited, accepted, full durations
	var errs, ok atomic.Int64
	var lastErr atomic.Value
	fail := func(err error) { errs.Add(1); lastErr.Store(err.Error()) }
	wait := func(c *client.Conn, typ, callID string) (time.Time, error) {
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case ev, open := <-c.Events():
				if !open {
					return time.Time{}, errors.New("connection finished")
				}
				if ev.Type == typ && (callID == "" || ev.CallID == callID) {
					return time.Now(), nil
				}
			case <-t.C:
				return time.Time{}, fmt.Errorf("no %s within 10s", typ)
			}
		}
	}
	start := time.Now()
	_, skipped := atRate(ctx, o.Rate, o.Duration, o.Callees, func(i int) {
		p := <-free
		defer func() { free <- p }()
		t0 := time.Now()
		gotInvite := make(chan error, 1)
		var t1 time.Time
		go func() {
			var err error
			t1, err = wait(p.callee, "call.invited", "")
			gotInvite <- err
		}()
		call, err := p.caller.Invite(ctx, client.InviteRequest{Invitees: []string{p.calleeUser}, Media: "audio"})
		_ = call
		if err != nil {
			<-gotInvite
			fail(err)
			return
		}
		if err := <-gotInvite; err != nil {
			fail(err)
			return
		}
		invited.add(t1.Sub(t0))
		t2 := time.Now()
		if _, err := p.callee.Accept(ctx, call.CallID); err != nil {
			fail(err)
			return
		}
		t3, err := wait(p.caller, "call.accepted", call.CallID)
		if err != nil {
			fail(err)
			return
		}
		accepted.add(t3.Sub(t2))
		if _, err := p.caller.Hangup(ctx, call.CallID); err != nil {
			fail(err)
			return
		}
		full.add(time.Since(t0))
		n := ok.Add(1)
		e.progress.set("call-online: %d calls, %d errors, %.1fs", n, errs.Load(), time.Since(start).Seconds())
	})
	p1 := sampleProc(e.pid)
	if err := e.profileStop(ctx, r); err != nil {
		return err
	}
	after, err := scrape(ctx, e.hc, e.url)
	if err != nil {
		return err
	}
	r.add("calls completed", float64(ok.Load()), "calls", "invite, accept, hang up")
	r.add("call errors", float64(errs.Load()), "calls", "")
	if v := lastErr.Load(); v != nil {
		r.note("last call error: %s", v)
	}
	r.add("invites skipped (all pairs busy)", float64(skipped), "calls", "the rate was not held when > 0")
	invited.report(r, "invite → callee call.invited", "client-side timestamps, exact", 0.5, 0.99, 0.999)
	accepted.report(r, "accept → caller call.accepted", "client-side timestamps, exact", 0.5, 0.99, 0.999)
	full.report(r, "whole call (invite, accept, hang up)", "client-side", 0.5, 0.99)
	if p0.ok && p1.ok {
		r.add("ringd CPU per call", float64((p1.cpu-p0.cpu).Microseconds())/float64(max(ok.Load(), 1)), "µs", "utime+stime delta ÷ completed calls")
		r.add("ringd peak RSS", float64(p1.hwm)/(1<<20), "MiB", "VmHWM")
		addIO(r, p0, p1, ok.Load(), "call")
	}
	addRuntime(r, before, after, ok.Load(), "call", p1.at.Sub(p0.at))
	return nil
}
