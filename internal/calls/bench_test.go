package calls

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// BenchmarkInvite measures one invitation end to end on SQLite: settings,
// validation, line-busy check, registrations, the ring push (fake
// pipeline), the store write and the events to connected devices.
func BenchmarkInvite(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("invitees=%d", n), func(b *testing.B) {
			e := newEnv(b)
			e.settings(func(s *settings.Settings) { s.CallWaiting = true; s.InvitesPerMinute = 10000 })
			invitees := make([]string, n)
			for i := range invitees {
				invitees[i] = fmt.Sprintf("callee%d", i)
				e.register(invitees[i], "phone", store.KindVoIP)
				e.connect(invitees[i], "ipad", bus.Foreground)
			}
			e.connect("caller0", "phone", bus.Foreground)
			req := InviteRequest{Invitees: invitees, Media: MediaVideo, GroupID: "g", RoomID: "1234"}
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				if _, err := e.svc.Invite(ctx, actor(fmt.Sprintf("caller%d", i%500), ""), req); err != nil {
					b.Fatal(err)
				}
				if i%64 == 0 {
					b.StopTimer()
					for _, inv := range invitees {
						e.events(inv, "ipad")
					}
					e.events("caller0", "phone")
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkInviteParallel measures invitations placed concurrently, as a
// loaded server sees them: 1:1 calls from many callers to offline callees
// (a VoIP token each, fake pipeline), with the callees' foreground
// devices connected and drained. Concurrent changes share commits.
func BenchmarkInviteParallel(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			e := newEnv(b)
			e.settings(func(s *settings.Settings) { s.CallWaiting = true; s.InvitesPerMinute = 10000 })
			const callees = 200
			var subs []*bus.Subscription
			for i := range callees {
				u := fmt.Sprintf("callee%d", i)
				e.register(u, "phone", store.KindVoIP)
				subs = append(subs, e.connect(u, "watch", bus.Background))
			}
			stopDrain := drain(subs)
			var n atomic.Int64
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			done := reportCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					req := InviteRequest{Invitees: []string{fmt.Sprintf("callee%d", i%callees)}, Media: MediaAudio}
					if _, err := e.svc.Invite(ctx, actor(fmt.Sprintf("caller%d", i%500), ""), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			done()
			b.StopTimer()
			stopDrain()
		})
	}
}

// reportCPU starts counting the process's CPU time; the function it
// returns reports it per operation as cpu-µs/op. On a shared machine CPU
// time says more than wall time: it does not grow while others run.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCallFlow measures whole 1:1 calls between connected devices,
// as in the call-online scenario: invite, accept, hang up (three changes,
// each stored and told to both sides), concurrently over many pairs.
func BenchmarkCallFlow(b *testing.B) {
	e := newEnv(b)
	e.settings(func(s *settings.Settings) { s.CallWaiting = true; s.InvitesPerMinute = 10000 })
	const pairs = 64
	var subs []*bus.Subscription
	for i := range pairs {
		for _, u := range []string{fmt.Sprint("caller", i), fmt.Sprint("callee", i)} {
			subs = append(subs, e.connect(u, "phone", bus.Foreground))
		}
	}
	stopDrain := drain(subs)
	var next atomic.Int64
	b.SetParallelism(pairs / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	done := reportCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1) - 1 // one pair per goroutine: a pair has one call at a time
		caller, callee := fmt.Sprint("caller", i%pairs), fmt.Sprint("callee", i%pairs)
		for pb.Next() {
			c, err := e.svc.Invite(ctx, actor(caller, "phone"), InviteRequest{Invitees: []string{callee}, Media: MediaAudio})
			if err == nil {
				_, err = e.svc.Accept(ctx, actor(callee, "phone"), c.CallID)
			}
			if err == nil {
				_, err = e.svc.Hangup(ctx, actor(caller, "phone"), c.CallID)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	done()
	b.StopTimer()
	stopDrain()
}

// drain reads the events of subs until the returned stop is called, as
// connected devices would, so that publishing never waits on them.
func drain(subs []*bus.Subscription) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() {
			for {
				select {
				case <-s.C():
				case <-done:
					return
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}
