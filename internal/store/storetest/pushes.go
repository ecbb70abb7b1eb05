package storetest

import (
	"testing"

	"github.com/ringd/ringd/internal/store"
)

func testPushes(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	p := newPush(app, "alice", "push-1", 0)
	ds := []*store.Delivery{newDelivery("aa01", 0), newDelivery("aa02", 5)}
	ds[1].State = "" // the store defaults it
	must(t, s.CreatePush(ctx, p, ds))

	if ds[0].ID == 0 || ds[1].ID <= ds[0].ID {
		t.Fatalf("delivery IDs %d, %d: want set and increasing", ds[0].ID, ds[1].ID)
	}
	for _, d := range ds {
		if d.PushID != p.ID || d.SDKAppID != app || d.UserID != "alice" || d.State != store.DeliveryPending {
			t.Errorf("CreatePush did not fill delivery %+v", *d)
		}
	}
	got, err := s.Push(ctx, app, p.ID)
	must(t, err)
	equal(t, "Push", *got, *p)
	_, err = s.Push(ctx, 1400000002, p.ID)
	wantErr(t, "Push under another app", err, store.ErrNotFound)
	gotDs, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	equal(t, "Deliveries", gotDs, deref(ds))

	err = s.CreatePush(ctx, newPush(1400000009, "alice", "push-2", 0), nil)
	wantErr(t, "CreatePush in an unknown app", err, store.ErrNotFound)
}

func testPushList(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	p1 := newPush(app, "alice", "p1", 1)
	p2 := newPush(app, "bob", "p2", 2)
	p3 := newPush(app, "alice", "p3", 3)
	for _, p := range []*store.Push{p2, p3, p1, newPush(1400000002, "alice", "x", 4)} {
		must(t, s.CreatePush(ctx, p, nil))
	}
	tests := []struct {
		user  string
		limit int
		want  []store.Push
	}{
		{"", 0, []store.Push{*p3, *p2, *p1}},
		{"", 2, []store.Push{*p3, *p2}},
		{"alice", 10, []store.Push{*p3, *p1}},
		{"alice", 1, []store.Push{*p3}},
		{"carol", 10, []store.Push{}},
	}
	for _, tt := range tests {
		got, err := s.Pushes(ctx, app, tt.user, tt.limit)
		must(t, err)
		equal(t, "Pushes("+tt.user+")", got, tt.want)
	}
}

// A push and its deliveries are written together or not at all.
func testCreatePushAtomic(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustPush(t, s, app, "push-1", "aa01")
	ds := []*store.Delivery{newDelivery("bb01", 0)}
	err := s.CreatePush(ctx, newPush(app, "bob", "push-1", 5), ds)
	wantErr(t, "CreatePush with a taken ID", err, store.ErrConflict)
	if ds[0].ID != 0 {
		t.Errorf("a rolled-back delivery kept ID %d", ds[0].ID)
	}
	got, err := s.Deliveries(ctx, "push-1")
	must(t, err)
	equal(t, "deliveries of push-1", deliveryTokens(got), []string{"aa01"})
	n, err := s.OutboxDepth(ctx)
	must(t, err)
	equal(t, "OutboxDepth", n, 1)
}

func deliveryTokens(ds []store.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Token)
	}
	return out
}
