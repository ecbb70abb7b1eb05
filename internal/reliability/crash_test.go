package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
)

// crashPlan sizes the kill -9 scenario.
type crashPlan struct {
	users       int // each with two alert devices; a fifth also with a VoIP token
	pushes      int // push IDs accepted per round (the kill comes at half)
	senders     int // concurrent push requests
	batch       int // users per push request
	callsEach   int // calls per group per round
	rounds      int // kills
	longTimeout int // seconds: calls that ring across the restart and time out later
	shortTimout int // seconds: calls whose deadline passes while ringd is down
}

func planCrash() crashPlan {
	p := crashPlan{users: 100, pushes: 400, senders: 4, batch: 10, callsEach: 8, rounds: 1, longTimeout: 40, shortTimout: 3}
	if full() {
		p = crashPlan{users: 400, pushes: 3000, senders: 8, batch: 20, callsEach: 20, rounds: 3, longTimeout: 60, shortTimout: 3}
	}
	return p
}

// ringingCall is a call the test started, with what it expects of it.
type ringingCall struct {
	id, group, callee string
	deadline          time.Time
	cancelled         bool
}

// TestCrash kills ringd with SIGKILL while pushes and calls are in flight,
// restarts it on the same data and port, and checks that no accepted push
// is lost, no push of a call that stopped ringing is sent, ring timers fire
// at their original deadline, and reconnecting devices are told how the
// calls that rang for them ended.
func TestCrash(t *testing.T) {
	forEachBackend(t, testCrash)
}

func testCrash(t *testing.T, database string) {
	plan := planCrash()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	sim := startSim(t)
	cfg := newRingdConfig(t, sim, database)
	rd := cfg.start(t)
	f := newFixture(t, ctx, cfg)

	users := make([]string, plan.users)
	for i := range users {
		users[i] = fmt.Sprintf("u%04d", i)
		f.register(t, ctx, users[i], users[i]+"-phone", "alert")
		f.register(t, ctx, users[i], users[i]+"-pad", "alert")
		if i%5 == 0 {
			f.register(t, ctx, users[i], users[i]+"-phone", "voip")
		}
	}

	l := newLedger()
	var calls []*ringingCall
	nextCallee := 0
	startCalls := func(group string, timeout, n int) []*ringingCall {
		var out []*ringingCall
		for range n {
			callee := users[nextCallee%len(users)]
			nextCallee++
			start := time.Now()
			id, err := f.admin.StartCall(ctx, f.app.SDKAppID, client.StartCall{
				Caller: "caller-" + callee, Invitees: []string{callee}, Media: "audio", Timeout: timeout})
			if err != nil {
				t.Fatalf("start call: %v", err)
			}
			c, err := f.admin.Call(ctx, f.app.SDKAppID, id)
			if err != nil {
				t.Fatalf("get call: %v", err)
			}
			rc := &ringingCall{id: id, group: group, callee: callee, deadline: c.Invitees[0].RingDeadline}
			if rc.deadline.Before(start) {
				t.Fatalf("call %s: ring deadline %v is before the call started", id, rc.deadline)
			}
			out = append(out, rc)
		}
		calls = append(calls, out...)
		return out
	}

	for round := 1; round <= plan.rounds; round++ {
		// Pushes from several senders; the kill comes once half are in.
		var accepted atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		reqs := make(chan []string)
		for range plan.senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for batch := range reqs {
					if stop.Load() {
						continue
					}
					res, err := f.admin.Send(ctx, f.app.SDKAppID, client.Push{Users: batch, Title: "load", Body: fmt.Sprintf("round %d", round)})
					if err != nil {
						stop.Store(true) // the kill: the rest of this round is not sent
						continue
					}
					l.add(kindPush, res.PushIDs...)
					accepted.Add(int64(len(res.PushIDs)))
				}
			}()
		}
		go func() {
			defer close(reqs)
			for i := 0; i < plan.pushes; i += plan.batch {
				batch := make([]string, 0, plan.batch)
				for j := range plan.batch {
					batch = append(batch, users[(i+j*7+round)%len(users)])
				}
				select {
				case reqs <- batch:
				case <-ctx.Done():
					return
				}
			}
		}()

		// Calls while the pushes flow: some ring across the restart, some are
		// cancelled before the kill, some time out while ringd is down.
		startCalls("long", plan.longTimeout, plan.callsEach)
		for _, c := range startCalls("cancelled", plan.longTimeout, plan.callsEach) {
			if err := f.admin.CancelCall(ctx, f.app.SDKAppID, c.id); err != nil {
				t.Fatalf("cancel call: %v", err)
			}
			c.cancelled = true
		}
		if err := waitFor(ctx, time.Minute, func() error {
			if n := accepted.Load(); n < int64(plan.pushes/3) {
				return fmt.Errorf("%d pushes accepted", n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		short := startCalls("short", plan.shortTimout, plan.callsEach)
		if err := waitFor(ctx, time.Minute, func() error {
			if n := accepted.Load(); n < int64(plan.pushes/2) {
				return fmt.Errorf("%d pushes accepted", n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		rd.kill(t)
		killedAt := time.Now()
		stop.Store(true)
		wg.Wait()
		t.Logf("round %d: SIGKILL after %d pushes accepted this round", round, accepted.Load())

		// Stay down until the short calls' deadlines have passed, so that
		// their timers fire at the restart, not on time.
		waitUntil(ctx, short[len(short)-1].deadline.Add(200*time.Millisecond))
		rd = cfg.start(t)
		t.Logf("round %d: restarted and ready %v after the kill", round, time.Since(killedAt).Round(time.Millisecond))
		readyAt := time.Now()

		// The short calls time out at the restart.
		for _, c := range short {
			got := waitEnded(t, ctx, f, c.id, 10*time.Second)
			if got.EndReason != "timeout" {
				t.Errorf("short call %s ended %q, want timeout", c.id, got.EndReason)
			}
			if got.EndedAt.Before(c.deadline) || got.EndedAt.After(readyAt.Add(2*time.Second)) {
				t.Errorf("short call %s ended at %v: want at the restart (deadline %v, ready %v)", c.id, got.EndedAt, c.deadline, readyAt)
			}
		}
	}

	// A device of each callee that connects now is told how the calls that
	// rang for it ended, or that the call still rings.
	for _, c := range calls {
		got, err := f.admin.Call(ctx, f.app.SDKAppID, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if c.group == "long" && got.Ended() {
			continue // checked below
		}
		conn := f.connect(t, ctx, c.callee, c.callee+"-laptop")
		ev := syncEventFor(t, conn, c.id)
		switch {
		case c.group == "long":
			if ev.Type != client.EventInvited || ev.TimeLeftMS <= 0 || ev.TimeLeftMS > time.Until(c.deadline).Milliseconds()+1000 {
				t.Errorf("long call %s: sync %s time_left %dms, want call.invited with %v left", c.id, ev.Type, ev.TimeLeftMS, time.Until(c.deadline))
			}
		case c.cancelled:
			if ev.Type != client.EventState || ev.Reason != "cancelled" {
				t.Errorf("cancelled call %s: sync %s reason %q, want call.state cancelled", c.id, ev.Type, ev.Reason)
			}
		default:
			if ev.Type != client.EventState || ev.Reason != "timeout" {
				t.Errorf("short call %s: sync %s reason %q, want call.state timeout", c.id, ev.Type, ev.Reason)
			}
		}
		_ = conn.Close()
	}

	// The long calls' timers fire at their original deadline.
	for _, c := range calls {
		if c.group != "long" {
			continue
		}
		got := waitEnded(t, ctx, f, c.id, time.Until(c.deadline)+15*time.Second)
		if got.EndReason != "timeout" {
			t.Errorf("long call %s ended %q, want timeout", c.id, got.EndReason)
		}
		if d := got.EndedAt.Sub(c.deadline); d < 0 || d > 2*time.Second {
			t.Errorf("long call %s ended %v after its deadline, want within 2s", c.id, d)
		}
	}

	// Every call ended: collect their ring and missed-call pushes.
	for _, c := range calls {
		got := waitEnded(t, ctx, f, c.id, 10*time.Second)
		l.addCall(got)
	}
	res := audit(t, ctx, f, l, 3*time.Minute)
	checkTally(t, "crash/"+backendName(database), res)
	if res.Pushes[kindRing] == 0 || res.Pushes[kindPush] == 0 {
		t.Errorf("the load was not what the test meant: %v", res.Pushes)
	}
}

func backendName(database string) string {
	if database == "" {
		return "sqlite"
	}
	return "postgres"
}

// waitEnded polls a call until it has ended.
func waitEnded(t *testing.T, ctx context.Context, f *fixture, callID string, within time.Duration) *client.Call {
	t.Helper()
	var got *client.Call
	err := waitFor(ctx, within, func() error {
		c, err := f.admin.Call(ctx, f.app.SDKAppID, callID)
		if err != nil {
			return err
		}
		if !c.Ended() {
			return fmt.Errorf("call %s is %s", callID, c.State)
		}
		got = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// syncEventFor reads a fresh connection's sync and returns its event for
// the call.
func syncEventFor(t *testing.T, conn *client.Conn, callID string) client.Event {
	t.Helper()
	var found *client.Event
	for {
		ev := nextEvent(t, conn, 10*time.Second, client.EventSyncDone, client.EventInvited, client.EventState)
		if ev.Type == client.EventSyncDone {
			break
		}
		if ev.CallID == callID {
			found = &ev
		}
	}
	if found == nil {
		t.Fatalf("the sync after the restart says nothing of call %s", callID)
	}
	return *found
}
