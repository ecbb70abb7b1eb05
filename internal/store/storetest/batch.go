package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// newBatch makes n pushes of app, push i for user-i with i%3 deliveries
// (so some have none), IDs prefixed by prefix.
func newBatch(app int64, prefix string, n int) []store.PushWithDeliveries {
	out := make([]store.PushWithDeliveries, n)
	for i := range out {
		p := newPush(app, fmt.Sprint("user-", i), fmt.Sprintf("%s-%04d", prefix, i), i%7)
		ds := make([]*store.Delivery, i%3)
		for j := range ds {
			ds[j] = newDelivery(fmt.Sprintf("%s%04d%02d", prefix, i, j), 0)
			ds[j].APNsID = fmt.Sprintf("apns-%s-%d-%d", prefix, i, j)
		}
		if len(ds) == 2 {
			ds[1].State, ds[1].Reason = store.DeliveryFailed, "NoAlertRegistration"
		}
		out[i] = store.PushWithDeliveries{Push: p, Deliveries: ds}
	}
	return out
}

func countDeliveries(b []store.PushWithDeliveries, state string) int {
	n := 0
	for _, pd := range b {
		for _, d := range pd.Deliveries {
			if state == "" || d.State == state {
				n++
			}
		}
	}
	return n
}

// CreatePushes writes a whole batch in one transaction with multi-row
// inserts, across chunk boundaries, and sets every delivery's ID.
func testCreatePushes(t *testing.T, open Open) {
	tests := []struct {
		name string
		n    int
	}{
		{"none", 0},
		{"one push without deliveries", 1},
		{"one push with deliveries", 3},
		{"a full batch of 1000 users", 1000},
		{"over one chunk of pushes and several of deliveries", 2345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			mustApp(t, s, app)
			b := newBatch(app, "b", tt.n)
			if tt.n == 3 {
				b = b[2:] // push 2 has two deliveries
			}
			must(t, s.CreatePushes(ctx, b))
			seen := map[int64]bool{}
			for _, pd := range b {
				for _, d := range pd.Deliveries {
					if d.ID == 0 || seen[d.ID] {
						t.Fatalf("delivery %s of %s: ID %d, want set and unique", d.Token, pd.Push.ID, d.ID)
					}
					seen[d.ID] = true
					if d.PushID != pd.Push.ID || d.SDKAppID != app || d.UserID != pd.Push.UserID {
						t.Fatalf("CreatePushes did not fill delivery %+v", *d)
					}
				}
			}
			// Spot-check round trips: first, middle and last pushes.
			for _, i := range []int{0, len(b) / 2, len(b) - 1} {
				if i < 0 || i >= len(b) {
					continue
				}
				pd := b[i]
				got, err := s.Push(ctx, app, pd.Push.ID)
				must(t, err)
				equal(t, "Push "+pd.Push.ID, *got, *pd.Push)
				gotDs, err := s.Deliveries(ctx, pd.Push.ID)
				must(t, err)
				equal(t, "Deliveries of "+pd.Push.ID, gotDs, deref(pd.Deliveries))
			}
			all, err := s.Pushes(ctx, app, "", 0)
			must(t, err)
			equal(t, "number of pushes", len(all), len(b))
			n, err := s.OutboxDepth(ctx)
			must(t, err)
			equal(t, "OutboxDepth", n, countDeliveries(b, store.DeliveryPending))
			checkDeliveryIDs(t, s, b) // last: it leases the deliveries
		})
	}
}

// checkDeliveryIDs claims every pending delivery of b and checks that
// each ID set by CreatePushes is the stored row's: SQLite derives them
// from the last inserted ID instead of reading them back.
func checkDeliveryIDs(t *testing.T, s store.Store, b []store.PushWithDeliveries) {
	t.Helper()
	type key struct{ push, token string }
	want := map[key]int64{}
	for _, pd := range b {
		for _, d := range pd.Deliveries {
			if d.State == store.DeliveryPending {
				want[key{d.PushID, d.Token}] = d.ID
			}
		}
	}
	now := at(3600) // every delivery is due
	claimed, err := s.ClaimDeliveries(t.Context(), now, now.Add(60*time.Second), len(want)+1)
	must(t, err)
	equal(t, "deliveries claimed", len(claimed), len(want))
	for _, d := range claimed {
		if id, ok := want[key{d.PushID, d.Token}]; !ok || id != d.ID {
			t.Fatalf("stored delivery %d of push %s (token %s): CreatePushes set ID %d", d.ID, d.PushID, d.Token, id)
		}
	}
}

// A batch is written whole or not at all, whichever push fails.
func testCreatePushesAtomic(t *testing.T, open Open) {
	tests := []struct {
		name  string
		edit  func(b []store.PushWithDeliveries)
		want  error
		count int
	}{
		{"a taken push ID in the first chunk", func(b []store.PushWithDeliveries) { b[5].Push.ID = "old" }, store.ErrConflict, 50},
		{"a taken push ID in a later chunk", func(b []store.PushWithDeliveries) { b[1200].Push.ID = "old" }, store.ErrConflict, 1300},
		{"a push ID twice in the batch", func(b []store.PushWithDeliveries) { b[1100].Push.ID = b[3].Push.ID }, store.ErrConflict, 1300},
		{"an unknown app in a later chunk", func(b []store.PushWithDeliveries) { b[1250].Push.SDKAppID = 1400000009 }, store.ErrNotFound, 1300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			mustApp(t, s, app)
			mustPush(t, s, app, "old", "aa01")
			b := newBatch(app, "x", tt.count)
			tt.edit(b)
			err := s.CreatePushes(ctx, b)
			wantErr(t, "CreatePushes", err, tt.want)
			for _, pd := range b {
				for _, d := range pd.Deliveries {
					if d.ID != 0 {
						t.Fatalf("a rolled-back delivery kept ID %d", d.ID)
					}
				}
			}
			all, err := s.Pushes(ctx, app, "", 0)
			must(t, err)
			equal(t, "pushes after the failed batch", len(all), 1)
			n, err := s.OutboxDepth(ctx)
			must(t, err)
			equal(t, "OutboxDepth", n, 1)
			got, err := s.Deliveries(ctx, "old")
			must(t, err)
			equal(t, "deliveries of the old push", deliveryTokens(got), []string{"aa01"})
		})
	}
}

// RegistrationsOfUsers reads many users' registrations at once, each
// user's as Registrations lists them, across IN-list chunks.
func testRegistrationsOfUsers(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	c := mustCert(t, s, app, store.EnvProduction)
	c2 := mustCert(t, s, 1400000002, store.EnvProduction)
	mustPut(t, s, newReg(app, "alice", "aa02", c.ID, "", 5), 0)
	mustPut(t, s, newReg(app, "alice", "aa01", c.ID, "", 9), 0)
	mustPut(t, s, newReg(app, "alice", "aa03", c.ID, "", 5), 0)
	mustPut(t, s, newReg(app, "bob", "bb01", c.ID, "", 1), 0)
	mustPut(t, s, newReg(1400000002, "carol", "cc01", c2.ID, "", 1), 0)
	var many []string
	for i := range 1200 {
		u := fmt.Sprint("u", i)
		many = append(many, u)
		if i%400 == 399 {
			mustPut(t, s, newReg(app, u, fmt.Sprintf("dd%04d", i), c.ID, "", i), 0)
		}
	}
	tests := []struct {
		name  string
		users []string
		want  map[string][]string // user → tokens
	}{
		{"none", nil, map[string][]string{}},
		{"one user, oldest first then by token", []string{"alice"}, map[string][]string{"alice": {"aa02", "aa03", "aa01"}}},
		{"several, with duplicates and unknowns", []string{"bob", "nobody", "alice", "bob"},
			map[string][]string{"alice": {"aa02", "aa03", "aa01"}, "bob": {"bb01"}}},
		{"another app's user is not read", []string{"carol"}, map[string][]string{}},
		{"more users than one IN list", append(many, "bob"),
			map[string][]string{"u399": {"dd0399"}, "u799": {"dd0799"}, "u1199": {"dd1199"}, "bob": {"bb01"}}},
	}
	for _, tt := range tests {
		got, err := s.RegistrationsOfUsers(ctx, app, tt.users)
		must(t, err)
		gotTokens := map[string][]string{}
		for u, regs := range got {
			gotTokens[u] = tokens(regs)
			if len(tt.users) < 10 {
				want, err := s.Registrations(ctx, app, u)
				must(t, err)
				equal(t, tt.name+": registrations of "+u, regs, want)
			}
		}
		equal(t, tt.name, gotTokens, tt.want)
	}
}
