package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

func newWebhook(app int64, event string, next int) *store.Webhook {
	w := &store.Webhook{SDKAppID: app, EventID: event, EventType: "call.ended",
		Body: []byte(`{"event":"` + event + `"}`), State: store.WebhookPending,
		CreatedAt: at(0), UpdatedAt: at(0)}
	if next >= 0 {
		w.NextAttemptAt = at(next)
	}
	return w
}

func mustWebhook(t *testing.T, s store.Store, w *store.Webhook) *store.Webhook {
	t.Helper()
	must(t, s.EnqueueWebhook(t.Context(), w))
	return w
}

func claimWebhooks(t *testing.T, s store.Store, now, lease time.Time, limit int) []store.Webhook {
	t.Helper()
	ws, err := s.ClaimWebhooks(t.Context(), now, lease, limit)
	must(t, err)
	return ws
}

func eventIDs(ws []store.Webhook) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.EventID)
	}
	return out
}

func testWebhooks(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	var ws []*store.Webhook
	for i := range 3 {
		w := newWebhook(app, fmt.Sprint("e", i), 0)
		w.CreatedAt, w.UpdatedAt = at(i), at(i)
		ws = append(ws, mustWebhook(t, s, w))
	}
	mustWebhook(t, s, newWebhook(1400000002, "x1", 0))
	if ws[0].ID == 0 || ws[1].ID <= ws[0].ID {
		t.Fatalf("webhook IDs %d, %d: want set and increasing", ws[0].ID, ws[1].ID)
	}

	// The store fills what was left empty.
	bare := &store.Webhook{SDKAppID: app, EventID: "e3", EventType: "call.started"}
	must(t, s.EnqueueWebhook(ctx, bare))
	if bare.State != store.WebhookPending || bare.CreatedAt.IsZero() || !bare.UpdatedAt.Equal(bare.CreatedAt) {
		t.Errorf("EnqueueWebhook did not fill %+v", *bare)
	}

	tests := []struct {
		limit int
		want  []store.Webhook
	}{
		{0, []store.Webhook{*bare, *ws[2], *ws[1], *ws[0]}},
		{2, []store.Webhook{*bare, *ws[2]}},
	}
	for _, tt := range tests {
		got, err := s.Webhooks(ctx, app, tt.limit)
		must(t, err)
		equal(t, fmt.Sprint("Webhooks, limit ", tt.limit), got, tt.want)
	}

	err := s.EnqueueWebhook(ctx, newWebhook(app, "e1", 0))
	wantErr(t, "EnqueueWebhook of a taken event ID", err, store.ErrConflict)
	err = s.EnqueueWebhook(ctx, newWebhook(1400000009, "e9", 0))
	wantErr(t, "EnqueueWebhook in an unknown app", err, store.ErrNotFound)
	got, err := s.Webhooks(ctx, app, 10)
	must(t, err)
	equal(t, "webhooks after refused enqueues", len(got), 4)
}

func testClaimWebhooks(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	leased := newWebhook(app, "leased", 0)
	leased.LeaseUntil = at(10)
	done := newWebhook(app, "done", 0)
	done.State = store.WebhookDelivered
	for _, w := range []*store.Webhook{newWebhook(app, "due-1", 1), newWebhook(app, "later", 5),
		newWebhook(app, "due-0", -1), leased, done} {
		mustWebhook(t, s, w)
	}

	got := claimWebhooks(t, s, at(3), at(63), 10)
	equal(t, "first claim", eventIDs(got), []string{"due-0", "due-1"})
	for _, w := range got {
		equal(t, "LeaseUntil of "+w.EventID, w.LeaseUntil, at(63))
	}
	equal(t, "claim while leased", len(claimWebhooks(t, s, at(3), at(63), 10)), 0)
	equal(t, "claim with limit 0", len(claimWebhooks(t, s, at(200), at(300), 0)), 0)

	// A failed attempt: try again at 30s.
	w := got[0]
	w.Attempts, w.NextAttemptAt, w.LastError, w.UpdatedAt = 1, at(30), "503 Service Unavailable", at(3)
	must(t, s.FinishWebhook(ctx, &w))
	equal(t, "lease after FinishWebhook", w.LeaseUntil, time.Time{})
	// leased's lease ran out at 10s and later became due at 5s.
	equal(t, "claim before the retry", eventIDs(claimWebhooks(t, s, at(29), at(89), 10)),
		[]string{"leased", "later"})
	retried := claimWebhooks(t, s, at(30), at(90), 10)
	equal(t, "claim at the retry", eventIDs(retried), []string{"due-0"})
	w.LeaseUntil = at(90)
	equal(t, "retried webhook", retried[0], w)

	w.State, w.Attempts, w.LastError, w.UpdatedAt = store.WebhookDelivered, 2, "", at(31)
	must(t, s.FinishWebhook(ctx, &w))
	all, err := s.Webhooks(ctx, app, 10)
	must(t, err)
	for _, x := range all {
		if x.ID == w.ID {
			equal(t, "delivered webhook", x, w)
		}
	}
	// Once the leases run out, the rest is due again; delivered ones never.
	equal(t, "claim after the leases", eventIDs(claimWebhooks(t, s, at(100), at(160), 10)),
		[]string{"leased", "due-1", "later"})

	missing := store.Webhook{ID: w.ID + 1000, State: store.WebhookFailed}
	wantErr(t, "FinishWebhook of a missing webhook", s.FinishWebhook(ctx, &missing), store.ErrNotFound)
}

// Several senders claim and finish at once: each webhook goes to
// exactly one of them, with no driver error.
func testClaimWebhooksConcurrent(t *testing.T, open Open) {
	const webhooks, workers = 60, 8
	s := open(t)
	mustApp(t, s, app)
	for i := range webhooks {
		mustWebhook(t, s, newWebhook(app, fmt.Sprintf("e%02d", i), i%7))
	}
	var (
		mu      sync.Mutex
		claimed []int64
		wg      sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			ids, err := sendWebhooks(t, s)
			mu.Lock()
			claimed = append(claimed, ids...)
			mu.Unlock()
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	slices.Sort(claimed)
	if n := len(slices.Compact(slices.Clone(claimed))); n != len(claimed) {
		t.Errorf("%d claims but %d distinct webhooks: a webhook was leased twice", len(claimed), n)
	}
	equal(t, "webhooks claimed", len(claimed), webhooks)
	equal(t, "claim after the senders", len(claimWebhooks(t, s, at(1000), at(2000), 100)), 0)
}

// sendWebhooks is one webhook sender; it runs off the test goroutine.
func sendWebhooks(t *testing.T, s store.Store) ([]int64, error) {
	var ids []int64
	for {
		ws, err := s.ClaimWebhooks(t.Context(), at(100), at(1000), 3)
		if err != nil || len(ws) == 0 {
			return ids, err
		}
		for _, w := range ws {
			ids = append(ids, w.ID)
			w.State, w.Attempts, w.UpdatedAt = store.WebhookDelivered, 1, at(100)
			if err := s.FinishWebhook(t.Context(), &w); err != nil {
				return ids, err
			}
		}
	}
}
