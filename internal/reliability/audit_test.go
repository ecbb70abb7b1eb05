package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
)

// Kinds of accepted pushes.
const (
	kindPush   = "push"   // POST /v1/apps/{id}/pushes
	kindRing   = "ring"   // a call ringing a device that is not in the foreground
	kindMissed = "missed" // the missed-call alert after a cancel or a timeout
)

// ledger is every push ringd accepted (answered 2xx with its ID), and for
// ring pushes when their call stopped ringing.
type ledger struct {
	mu      sync.Mutex
	kind    map[string]string    // push ID -> kind
	stopped map[string]time.Time // ring push ID -> when its call stopped ringing for that user
}

func newLedger() *ledger {
	return &ledger{kind: map[string]string{}, stopped: map[string]time.Time{}}
}

func (l *ledger) add(kind string, ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.kind[id] = kind
	}
}

// addCall records the ring and missed-call pushes of an ended call.
func (l *ledger) addCall(c *client.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, inv := range c.Invitees {
		stop := c.EndedAt
		if inv.RespondedAt != nil {
			stop = inv.RespondedAt
		}
		for _, p := range inv.Pushes {
			l.kind[p.PushID] = p.Kind
			if p.Kind == kindRing && stop != nil {
				l.stopped[p.PushID] = *stop
			}
		}
	}
}

// tally is what the audit found. Deliveries count (push, device) pairs;
// Lost must be 0.
type tally struct {
	Pushes        map[string]int // accepted pushes by kind
	Deliveries    int            // devices the accepted pushes were for
	Delivered     int            // deliveries that reached the device (at least once)
	Duplicates    int            // extra copies received, same apns-id
	DupDeliveries int            // deliveries received more than once
	Expired       int            // not sent: their expiry passed first
	Stopped       int            // not sent: their call stopped ringing first
	Lost          int            // accepted, still deliverable, never received
	SentLate      int            // ring pushes received after their call stopped ringing
	Unacked       int            // received, from requests cut by the kill (no ID returned)
	Late          int            // delivered more than 20s after the push was accepted
	MaxDelay      time.Duration  // the longest time from acceptance to the first receipt
	lostDetail    []string
}

func (t tally) String() string {
	return fmt.Sprintf("accepted pushes %v; deliveries %d: delivered %d, duplicated %d (%d extra copies), expired %d, stopped %d, lost %d; ring pushes received after their call stopped %d; received from unacknowledged requests %d; delivered >20s after acceptance %d (longest %v)",
		t.Pushes, t.Deliveries, t.Delivered, t.DupDeliveries, t.Duplicates, t.Expired, t.Stopped, t.Lost, t.SentLate, t.Unacked, t.Late, t.MaxDelay.Round(time.Millisecond))
}

// lateSlack allows for a ring push whose request was already on the
// wire when the call stopped (ringd cannot recall it from Apple).
const lateSlack = time.Second

// audit waits until every accepted push is final, then matches every
// delivery of its trace against the simulator's inboxes by apns-id.
func audit(t *testing.T, ctx context.Context, f *fixture, l *ledger, within time.Duration) tally {
	t.Helper()
	l.mu.Lock()
	kinds := make(map[string]string, len(l.kind))
	for id, k := range l.kind {
		kinds[id] = k
	}
	stopped := make(map[string]time.Time, len(l.stopped))
	for id, at := range l.stopped {
		stopped[id] = at
	}
	l.mu.Unlock()

	traces := waitTraces(t, ctx, f, kinds, within)

	// What every device received, by apns-id.
	type key struct{ token, apnsID string }
	received := map[key][]time.Time{}
	known := map[key]bool{}
	for _, toks := range f.tokens {
		for _, tok := range toks {
			inbox, err := f.sim.Inbox(ctx, tok)
			if err != nil {
				t.Fatalf("inbox: %v", err)
			}
			for _, n := range inbox {
				k := key{tok, strings.ToLower(n.Headers["apns-id"])}
				received[k] = append(received[k], n.ReceivedAt)
			}
		}
	}
	now := time.Now()
	res := tally{Pushes: map[string]int{}}
	for id, tr := range traces {
		kind := kinds[id]
		res.Pushes[kind]++
		stopAt, isStopped := stopped[id]
		for _, d := range tr.Devices {
			res.Deliveries++
			k := key{d.Token, strings.ToLower(d.APNsID)}
			known[k] = true
			got := received[k]
			switch {
			case len(got) > 0:
				res.Delivered++
				first := got[0]
				for _, at := range got {
					if at.Before(first) {
						first = at
					}
				}
				if delay := first.Sub(tr.CreatedAt); delay > res.MaxDelay {
					res.MaxDelay = delay
				}
				if first.Sub(tr.CreatedAt) > 20*time.Second {
					res.Late++
				}
				if len(got) > 1 {
					res.DupDeliveries++
					res.Duplicates += len(got) - 1
				}
				if isStopped {
					for _, at := range got {
						if at.After(stopAt.Add(lateSlack)) {
							res.SentLate++
							res.lostDetail = append(res.lostDetail, fmt.Sprintf("ring push %s received at %s, its call stopped at %s", id, at.Format(time.RFC3339Nano), stopAt.Format(time.RFC3339Nano)))
						}
					}
				}
			case d.State == "expired" && isStopped:
				res.Stopped++
			case d.State == "expired" && tr.ExpiresAt != nil && !tr.ExpiresAt.After(now):
				res.Expired++
			default:
				res.Lost++
				res.lostDetail = append(res.lostDetail, fmt.Sprintf("%s push %s to %s…: state %s (%s), %d attempts, trace: %s",
					kind, id, d.Token[:8], d.State, d.Reason, len(d.Attempts), d.Diagnosis))
			}
		}
	}
	for k, got := range received {
		if !known[k] {
			res.Unacked += len(got)
		}
	}
	return res
}

// waitTraces polls the traces of the pushes until all are final.
func waitTraces(t *testing.T, ctx context.Context, f *fixture, kinds map[string]string, within time.Duration) map[string]*client.Trace {
	t.Helper()
	ids := make(chan string)
	var mu sync.Mutex
	out := map[string]*client.Trace{}
	var failures []string
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				tr, err := f.admin.WaitTrace(ctx, f.app.SDKAppID, id, nil)
				mu.Lock()
				if err != nil {
					status := "none"
					if tr != nil {
						status = tr.Status
					}
					failures = append(failures, fmt.Sprintf("%s (%s, status %s): %v", id, kinds[id], status, err))
				} else {
					out[id] = tr
				}
				mu.Unlock()
			}
		}()
	}
	for id := range kinds {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d pushes not final within %v, e.g. %s", len(failures), within, failures[0])
	}
	return out
}

func checkTally(t *testing.T, name string, res tally) {
	t.Helper()
	t.Logf("RESULT %s: %s", name, res)
	for i, d := range res.lostDetail {
		if i == 20 {
			t.Errorf("… %d more", len(res.lostDetail)-i)
			break
		}
		t.Errorf("%s", d)
	}
	if res.Lost != 0 || res.SentLate != 0 {
		t.Errorf("%s: lost %d, ring pushes sent after their call stopped %d: want 0 and 0", name, res.Lost, res.SentLate)
	}
}
