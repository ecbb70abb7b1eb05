package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

// newCall is a ringing call created at sec, placed by caller to invitees.
func newCall(app int64, id, caller string, sec int, invitees ...string) *store.Call {
	c := &store.Call{
		ID: id, SDKAppID: app, Caller: caller, Media: "audio", RoomID: "room-" + id,
		Data: `{"k":"v"}`, State: store.CallRinging, CreatedAt: at(sec), Seq: 1,
		PushIDs: []string{"push-" + id}, Doc: []byte(`{"id":"` + id + `"}`), UpdatedAt: at(sec),
		Participants: []store.CallParticipant{{UserID: caller, Role: "caller", Outcome: "calling"}},
	}
	for _, u := range invitees {
		c.Participants = append(c.Participants, store.CallParticipant{
			UserID: u, Role: "invitee", Outcome: "ringing", RingDeadline: at(sec + 45)})
	}
	return c
}

// end ends c at sec with reason, as the call service would.
func end(c *store.Call, sec int, reason string) *store.Call {
	c.State, c.EndedAt, c.EndReason, c.UpdatedAt = store.CallEnded, at(sec), reason, at(sec)
	c.Seq++
	for i := range c.Participants {
		c.Participants[i].Outcome = "cancelled"
	}
	return c
}

func mustCall(t *testing.T, s store.Store, c *store.Call) *store.Call {
	t.Helper()
	must(t, s.PutCall(t.Context(), c))
	return c
}

func callIDs(calls []store.Call) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.ID)
	}
	return out
}

func testPutCall(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)

	c := mustCall(t, s, newCall(app, "call-1", "alice", 1, "bob", "carol"))
	got, err := s.Call(ctx, app, c.ID)
	must(t, err)
	equal(t, "Call", *got, *c)
	_, err = s.Call(ctx, 1400000002, c.ID)
	wantErr(t, "Call under another app", err, store.ErrNotFound)

	// Every state change replaces the call and its participants.
	c.State, c.AnsweredAt, c.Seq, c.UpdatedAt = store.CallAnswered, at(5), 3, at(5)
	c.PushIDs = append(c.PushIDs, "push-call-1b")
	c.Participants = []store.CallParticipant{c.Participants[0],
		{UserID: "bob", Role: "invitee", Outcome: "accepted", RingDeadline: at(46)}}
	must(t, s.PutCall(ctx, c))
	got, err = s.Call(ctx, app, c.ID)
	must(t, err)
	equal(t, "Call after an update", *got, *c)

	// Participants added, reordered and dropped, and the end: what the
	// queries by user read follows.
	c.State, c.EndedAt, c.EndReason, c.Seq, c.UpdatedAt = store.CallEnded, at(9), "hangup", 4, at(9)
	c.Participants = []store.CallParticipant{
		{UserID: "dave", Role: "invitee", Outcome: "left", RingDeadline: at(50)},
		{UserID: "alice", Role: "caller", Outcome: "left"},
	}
	must(t, s.PutCall(ctx, c))
	got, err = s.Call(ctx, app, c.ID)
	must(t, err)
	equal(t, "Call after participants changed", *got, *c)
	for _, tt := range []struct {
		user            string
		invited, listed []string
	}{
		{"alice", []string{}, []string{c.ID}},
		{"bob", []string{}, []string{}},
		{"dave", []string{c.ID}, []string{c.ID}},
	} {
		invited, err := s.CallsOfInvitee(ctx, app, tt.user, at(8))
		must(t, err)
		equal(t, "CallsOfInvitee("+tt.user+")", callIDs(invited), tt.invited)
		listed, err := s.Calls(ctx, app, store.CallFilter{UserID: tt.user})
		must(t, err)
		equal(t, "Calls("+tt.user+")", callIDs(listed), tt.listed)
	}

	// A call without participants, push IDs or doc keeps them nil, and
	// the store fills the times left zero.
	bare := &store.Call{ID: "call-2", SDKAppID: app, Caller: "alice", State: store.CallRinging}
	must(t, s.PutCall(ctx, bare))
	if bare.CreatedAt.IsZero() || bare.UpdatedAt.IsZero() {
		t.Errorf("PutCall left times %v / %v", bare.CreatedAt, bare.UpdatedAt)
	}
	got, err = s.Call(ctx, app, bare.ID)
	must(t, err)
	equal(t, "bare Call", *got, *bare)

	// The batch form shares this test's place in the suite's list.
	t.Run("PutCalls", func(t *testing.T) { testPutCalls(t, open) })
	t.Run("PutCallsAtomic", func(t *testing.T) { testPutCallsAtomic(t, open) })
	t.Run("PutCallsWithPushes", func(t *testing.T) { testPutCallsWithPushes(t, open) })
}

// PutCallsWithPushes writes a call change and the pushes it sends in one
// transaction: both, or neither when either is refused.
func testPutCallsWithPushes(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	stored := mustCall(t, s, newCall(app, "call-1", "alice", 1, "bob"))
	stored.Seq = 5
	must(t, s.PutCall(ctx, stored))

	ring := func(id string, pushApp int64) store.PushWithDeliveries {
		return store.PushWithDeliveries{Push: newPush(pushApp, "bob", id, 1), Deliveries: []*store.Delivery{newDelivery("tok-"+id, 0)}}
	}
	older := newCall(app, "call-1", "alice", 1, "bob")
	older.Seq = 4
	tests := []struct {
		name   string
		calls  []*store.Call
		pushes []store.PushWithDeliveries
		want   error // nil: everything written
	}{
		{"a new call and its push", []*store.Call{newCall(app, "call-2", "alice", 2, "bob")}, []store.PushWithDeliveries{ring("p-ok", app)}, nil},
		{"pushes alone", nil, []store.PushWithDeliveries{ring("p-alone", app)}, nil},
		{"a call alone", []*store.Call{newCall(app, "call-3", "alice", 3, "bob")}, nil, nil},
		{"a refused call takes its push back", []*store.Call{older}, []store.PushWithDeliveries{ring("p-older", app)}, store.ErrConflict},
		{"a refused push takes its call back", []*store.Call{newCall(app, "call-4", "alice", 4, "bob")},
			[]store.PushWithDeliveries{ring("p-bad", 1400000009)}, store.ErrNotFound},
		{"nothing", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutCallsWithPushes(ctx, tt.calls, tt.pushes)
			if tt.want != nil {
				wantErr(t, "PutCallsWithPushes", err, tt.want)
			} else {
				must(t, err)
			}
			for _, c := range tt.calls {
				got, err := s.Call(ctx, c.SDKAppID, c.ID)
				switch {
				case tt.want == nil:
					must(t, err)
					equal(t, "call "+c.ID, *got, *c)
				case c.ID == "call-1":
					must(t, err)
					equal(t, "stored call's Seq", got.Seq, int64(5))
				default:
					wantErr(t, "call of a refused write", err, store.ErrNotFound)
				}
			}
			for _, pd := range tt.pushes {
				_, err := s.Push(ctx, pd.Push.SDKAppID, pd.Push.ID)
				ds, derr := s.Deliveries(ctx, pd.Push.ID)
				if tt.want == nil {
					must(t, err)
					must(t, derr)
					if len(ds) != 1 || pd.Deliveries[0].ID == 0 {
						t.Errorf("push %s: deliveries %v, ID %d", pd.Push.ID, ds, pd.Deliveries[0].ID)
					}
					continue
				}
				wantErr(t, "push of a refused write", err, store.ErrNotFound)
				if len(ds) != 0 || pd.Deliveries[0].ID != 0 {
					t.Errorf("push %s of a refused write: deliveries %v, ID %d", pd.Push.ID, ds, pd.Deliveries[0].ID)
				}
			}
		})
	}
}

// PutCalls writes new calls and new versions of stored ones, each as
// PutCall would, in one go.
func testPutCalls(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	must(t, s.PutCalls(ctx, nil))

	old := mustCall(t, s, newCall(app, "call-1", "alice", 1, "bob", "carol"))
	old.State, old.AnsweredAt, old.Seq, old.UpdatedAt = store.CallAnswered, at(5), 3, at(5)
	old.Participants = old.Participants[:2]
	old.Participants[1].Outcome = "accepted"
	// More participants than one multi-row insert takes, in their order.
	big := newCall(app, "call-2", "dave", 2)
	for i := range 120 {
		big.Participants = append(big.Participants, store.CallParticipant{
			UserID: fmt.Sprintf("u%03d", 119-i), Role: "invitee", Outcome: "ringing", RingDeadline: at(47)})
	}
	other := newCall(1400000002, "call-3", "erin", 3, "frank")
	bare := &store.Call{ID: "call-4", SDKAppID: app, Caller: "alice", State: store.CallRinging}
	must(t, s.PutCalls(ctx, []*store.Call{old, big, other, bare}))
	if bare.CreatedAt.IsZero() || bare.UpdatedAt.IsZero() {
		t.Errorf("PutCalls left times %v / %v", bare.CreatedAt, bare.UpdatedAt)
	}
	for _, c := range []*store.Call{old, big, other, bare} {
		got, err := s.Call(ctx, c.SDKAppID, c.ID)
		must(t, err)
		equal(t, "call "+c.ID, *got, *c)
	}
}

// A batch with one call PutCall would refuse writes none of its calls and
// fails with that call's error, naming it.
func testPutCallsAtomic(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	stored := newCall(app, "call-1", "alice", 1, "bob")
	stored.Seq = 5
	mustCall(t, s, stored)

	tests := []struct {
		name string
		bad  func() *store.Call
		want error
	}{
		{"another app's ID", func() *store.Call { return newCall(1400000002, "call-1", "mallory", 2, "eve") }, store.ErrConflict},
		{"an older version", func() *store.Call {
			c := newCall(app, "call-1", "alice", 1, "bob")
			c.Seq = 4
			return c
		}, store.ErrConflict},
		{"a participant twice", func() *store.Call { return newCall(app, "call-9", "alice", 2, "bob", "bob") }, store.ErrConflict},
		{"an unknown app", func() *store.Call { return newCall(1400000009, "call-9", "alice", 2, "bob") }, store.ErrNotFound},
		{"one ID twice", func() *store.Call { return newCall(app, "call-new", "alice", 2, "carol") }, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			update := newCall(app, "call-1", "alice", 1, "bob", "carol")
			update.Seq, update.State = 6, store.CallEnded
			fresh := newCall(app, "call-new", "carol", 3, "dave")
			bad := tt.bad()
			err := s.PutCalls(t.Context(), []*store.Call{update, fresh, bad})
			wantErr(t, "PutCalls", err, tt.want)
			if err != nil && !strings.Contains(err.Error(), bad.ID) {
				t.Errorf("PutCalls error %q does not name call %s", err, bad.ID)
			}
			got, err := s.Call(t.Context(), app, "call-1")
			must(t, err)
			equal(t, "stored call", *got, *stored)
			_, err = s.Call(t.Context(), app, "call-new")
			wantErr(t, "the new call of a failed batch", err, store.ErrNotFound)
		})
	}
}

// PutCall refuses what would overwrite another app's call or a newer
// version, and changes nothing when it fails.
func testPutCallRefused(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	stored := mustCall(t, s, newCall(app, "call-1", "alice", 1, "bob"))
	stored.Seq = 5
	must(t, s.PutCall(t.Context(), stored))

	tests := []struct {
		name string
		edit func(c *store.Call)
		want error
	}{
		{"the same ID in another app", func(c *store.Call) { c.SDKAppID = 1400000002 }, store.ErrConflict},
		{"an older version", func(c *store.Call) { c.Seq = 4 }, store.ErrConflict},
		{"a participant twice", func(c *store.Call) {
			c.Participants = append(c.Participants, c.Participants[1])
		}, store.ErrConflict},
		{"an unknown app", func(c *store.Call) { c.ID, c.SDKAppID = "call-9", 1400000009 }, store.ErrNotFound},
		// A newer version in all but the caller or creation time is
		// another call under the same ID.
		{"another caller", func(c *store.Call) { *c = *newCall(app, "call-1", "mallory", 1, "bob"); c.Seq = 6 }, store.ErrConflict},
		{"another creation time", func(c *store.Call) { *c = *newCall(app, "call-1", "alice", 2, "bob"); c.Seq = 6 }, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCall(app, "call-1", "mallory", 2, "eve")
			c.Seq, c.State = 6, store.CallEnded
			tt.edit(c)
			wantErr(t, "PutCall", s.PutCall(t.Context(), c), tt.want)
			got, err := s.Call(t.Context(), app, "call-1")
			must(t, err)
			equal(t, "stored call", *got, *stored)
		})
	}
	// The same version again is a replace, not a conflict.
	must(t, s.PutCall(t.Context(), stored))
}

func testCallList(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	for _, c := range []*store.Call{
		newCall(app, "c1", "alice", 10, "bob"),
		newCall(app, "c2", "bob", 20, "carol"),
		newCall(app, "c3", "carol", 30, "alice", "bob"),
		newCall(app, "c4", "dave", 40, "carol"),
		newCall(app, "c5", "alice", 40), // no invitees; ties c4 on time
		newCall(1400000002, "x1", "alice", 50, "bob"),
	} {
		mustCall(t, s, c)
	}
	// A caller who is not among the participants is still found.
	orphan := newCall(app, "c6", "erin", 60, "frank")
	orphan.Participants = orphan.Participants[1:]
	mustCall(t, s, orphan)

	tests := []struct {
		name string
		f    store.CallFilter
		want []string
	}{
		{"all", store.CallFilter{}, []string{"c6", "c5", "c4", "c3", "c2", "c1"}},
		{"limit", store.CallFilter{Limit: 2}, []string{"c6", "c5"}},
		{"since, inclusive", store.CallFilter{Since: at(30)}, []string{"c6", "c5", "c4", "c3"}},
		{"until, exclusive", store.CallFilter{Until: at(30)}, []string{"c2", "c1"}},
		{"since and until", store.CallFilter{Since: at(20), Until: at(40)}, []string{"c3", "c2"}},
		{"caller or invitee", store.CallFilter{UserID: "alice"}, []string{"c5", "c3", "c1"}},
		{"a user with limit", store.CallFilter{UserID: "carol", Limit: 2}, []string{"c4", "c3"}},
		{"a user with since", store.CallFilter{UserID: "bob", Since: at(15)}, []string{"c3", "c2"}},
		{"a user with until", store.CallFilter{UserID: "bob", Until: at(20)}, []string{"c1"}},
		{"a caller not in the participants", store.CallFilter{UserID: "erin"}, []string{"c6"}},
		{"a user with no calls", store.CallFilter{UserID: "zoe"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Calls(t.Context(), app, tt.f)
			must(t, err)
			equal(t, "Calls", callIDs(got), tt.want)
		})
	}

	// Listed calls come whole, participants included.
	got, err := s.Calls(t.Context(), app, store.CallFilter{UserID: "alice", Limit: 1})
	must(t, err)
	equal(t, "listed call", got, []store.Call{*newCall(app, "c5", "alice", 40)})
}

func testCallListDefaultLimit(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	for i := range 101 {
		mustCall(t, s, newCall(app, fmt.Sprintf("c%03d", i), "alice", i, "bob"))
	}
	for _, user := range []string{"", "bob"} {
		got, err := s.Calls(t.Context(), app, store.CallFilter{UserID: user})
		must(t, err)
		equal(t, "Calls("+user+") without a limit", len(got), 100)
		equal(t, "newest", got[0].ID, "c100")
	}
}

func testActiveCalls(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	ringing := mustCall(t, s, newCall(app, "c1", "alice", 20, "bob"))
	answered := newCall(1400000002, "x1", "alice", 10, "bob")
	answered.State, answered.AnsweredAt = store.CallAnswered, at(11)
	mustCall(t, s, answered)
	mustCall(t, s, end(newCall(app, "c2", "alice", 5, "bob"), 6, "cancelled"))

	got, err := s.ActiveCalls(t.Context())
	must(t, err)
	equal(t, "ActiveCalls, oldest first, all apps", got, []store.Call{*answered, *ringing})

	mustCall(t, s, end(ringing, 30, "timeout"))
	got, err = s.ActiveCalls(t.Context())
	must(t, err)
	equal(t, "ActiveCalls after an end", callIDs(got), []string{"x1"})
}

// A device that reconnects asks what happened to alice's invitations
// since it was last connected: calls created since, and calls created
// before but ended since.
func testCallsOfInvitee(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	for _, c := range []*store.Call{
		end(newCall(app, "old", "bob", 1, "alice"), 2, "timeout"),
		end(newCall(app, "long", "bob", 5, "alice"), 50, "hangup"),
		end(newCall(app, "short", "bob", 10, "alice", "carol"), 20, "declined"),
		newCall(app, "stale", "bob", 12, "alice"), // created before 15, still ringing
		newCall(app, "new", "carol", 30, "alice"),
		newCall(app, "placed", "alice", 40, "bob"),    // alice is the caller
		newCall(app, "others", "bob", 35, "carol"),    // alice is not in it
		newCall(1400000002, "x1", "bob", 40, "alice"), // another app
	} {
		mustCall(t, s, c)
	}
	tests := []struct {
		name  string
		since int
		want  []string
	}{
		{"everything", 0, []string{"old", "long", "short", "stale", "new"}},
		{"created or ended since", 15, []string{"long", "short", "new"}},
		{"ended at since", 20, []string{"long", "short", "new"}},
		{"created at since", 30, []string{"long", "new"}},
		{"only ended since", 31, []string{"long"}},
		{"nothing since", 51, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.CallsOfInvitee(t.Context(), app, "alice", at(tt.since))
			must(t, err)
			equal(t, "CallsOfInvitee", callIDs(got), tt.want)
		})
	}
	got, err := s.CallsOfInvitee(t.Context(), app, "alice", at(31))
	must(t, err)
	equal(t, "returned call", got, []store.Call{*end(newCall(app, "long", "bob", 5, "alice"), 50, "hangup")})
}

// The call service writes from many goroutines: different calls never
// fail or mix, and racing versions of one call leave the highest Seq.
func testPutCallConcurrent(t *testing.T, open Open) {
	const calls, versions = 16, 5
	s := open(t)
	mustApp(t, s, app)
	var wg sync.WaitGroup
	errs := make(chan error, calls*versions*2)
	for i := range calls {
		wg.Go(func() {
			id := fmt.Sprint("call-", i)
			for v := range versions {
				c := newCall(app, id, "alice", i, fmt.Sprint("bob-", i), fmt.Sprint("carol-", v))
				c.Seq = int64(v + 1)
				errs <- s.PutCall(t.Context(), c)
			}
		})
		// Racing writers of one call: some lose with ErrConflict.
		wg.Go(func() {
			c := newCall(app, "shared", "alice", 0, fmt.Sprint("racer-", i))
			c.Seq = int64(i + 1)
			if err := s.PutCall(t.Context(), c); err != nil && !errors.Is(err, store.ErrConflict) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for i := range calls {
		got, err := s.Call(t.Context(), app, fmt.Sprint("call-", i))
		must(t, err)
		want := newCall(app, got.ID, "alice", i, fmt.Sprint("bob-", i), fmt.Sprint("carol-", versions-1))
		want.Seq = versions
		equal(t, "call "+got.ID, *got, *want)
	}
	got, err := s.Call(t.Context(), app, "shared")
	must(t, err)
	want := newCall(app, "shared", "alice", 0, fmt.Sprint("racer-", calls-1))
	want.Seq = calls
	equal(t, "the racing call", *got, *want)
}
