package calls

import (
	"fmt"
	"testing"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// BenchmarkInvite measures one invitation end to end on SQLite: settings,
// validation, line-busy check, registrations, the ring push (fake
// pipeline), the store write and the events to connected devices.
func BenchmarkInvite(b *testing.B) {
	for _, n := range []int{1, 4} {
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
			b.ResetTimer()
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
