package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

// finalRecorder collects OnFinal events.
type finalRecorder struct {
	mu  sync.Mutex
	evs []FinalEvent
}

func (r *finalRecorder) onFinal(ctx context.Context, ev FinalEvent) {
	if _, ok := ctx.Deadline(); !ok {
		ev.Diagnosis = "NO DEADLINE: " + ev.Diagnosis // OnFinal must get a bounded context
	}
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *finalRecorder) events() []FinalEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FinalEvent(nil), r.evs...)
}

func (r *finalRecorder) wait(t *testing.T, n int) []FinalEvent {
	t.Helper()
	var evs []FinalEvent
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if evs = r.events(); len(evs) < n {
			return fmt.Errorf("%w: %d events, want %d", errNotYet, len(evs), n)
		}
		return nil
	})
	return evs
}

// counterValue reads one series of a counter or a histogram's sample count.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			if m.GetHistogram() != nil {
				sum += float64(m.GetHistogram().GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestOnFinal(t *testing.T) {
	tests := []struct {
		name      string
		kind      string // of the one registration
		req       Request
		respond   func(int, *apns.Credential, *apns.Notification) (*apns.Response, error)
		maxTries  int
		advance   time.Duration // moves the clock before the workers start
		want      *FinalEvent   // nil: no event
		diagnosis string
	}{
		{name: "delivered is not final failure", kind: store.KindAlert, req: Request{Body: "hi"}},
		{name: "token dead", kind: store.KindAlert, req: Request{Body: "hi", Source: SourceCall},
			respond: func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
				return answer(410, "Unregistered")
			},
			want:      &FinalEvent{State: store.DeliveryFailed, Reason: "Unregistered", Classification: "token_dead", Source: SourceCall},
			diagnosis: "uninstalled"},
		{name: "bad device token without another certificate", kind: store.KindVoIP, req: Request{VoIP: true, Source: SourceCall},
			respond:   badDeviceTokenOn(store.EnvProduction),
			want:      &FinalEvent{State: store.DeliveryFailed, Reason: "BadDeviceToken", Classification: "configuration", Source: SourceCall},
			diagnosis: "bad devicetoken"},
		{name: "gave up after transient failures", kind: store.KindAlert, req: Request{Body: "hi"}, maxTries: 2,
			respond: func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
				return answer(500, "InternalServerError")
			},
			want:      &FinalEvent{State: store.DeliveryFailed, Reason: "InternalServerError", Classification: "transient", Source: SourceAPI},
			diagnosis: "gave up after 2 attempts"},
		{name: "expired before it was sent", kind: store.KindVoIP, req: Request{VoIP: true, Expiration: ptr(int64(0)), Source: SourceCall},
			advance:   time.Minute,
			want:      &FinalEvent{State: store.DeliveryExpired, Reason: ReasonExpired, Classification: "expired", Source: SourceCall},
			diagnosis: "expired at"},
		{name: "no alert registration, failed at submit", kind: store.KindVoIP, req: Request{Body: "a message"},
			want:      &FinalEvent{State: store.DeliveryFailed, Reason: ReasonNoAlertRegistration, Classification: "configuration", Source: SourceAPI},
			diagnosis: "registered only a VoIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prod, _ := newCerts()
			e := newTestEnv(t, prod)
			rec := &finalRecorder{}
			e.svc.cfg.OnFinal = rec.onFinal
			if tt.maxTries > 0 {
				e.svc.cfg.MaxAttempts = tt.maxTries
			}
			e.sender.respond = tt.respond
			e.register("bob", tokenA, tt.kind, "phone", prod, time.Now())
			id := e.submit("bob", tt.req)
			e.clock.Advance(tt.advance)
			e.run()
			if tt.want == nil {
				e.waitStatus(id, StatusDelivered)
				if evs := rec.events(); len(evs) != 0 {
					t.Fatalf("OnFinal called for a delivered push: %+v", evs)
				}
				return
			}
			evs := rec.wait(t, 1)
			ev := evs[0]
			want := *tt.want
			want.SDKAppID, want.PushID, want.UserID, want.Token, want.DeviceID, want.CertificateID = testApp, id, "bob", tokenA, "phone", prod.ID
			want.Diagnosis = ev.Diagnosis
			if ev != want {
				t.Errorf("event\n got %+v\nwant %+v", ev, want)
			}
			if !strings.Contains(ev.Diagnosis, tt.diagnosis) || strings.HasPrefix(ev.Diagnosis, "NO DEADLINE") {
				t.Errorf("diagnosis %q, want it to contain %q", ev.Diagnosis, tt.diagnosis)
			}
			e.waitStatus(id, map[string]string{store.DeliveryFailed: StatusFailed, store.DeliveryExpired: StatusExpired}[want.State])
			if evs := rec.events(); len(evs) != 1 {
				t.Errorf("%d events, want exactly 1: %+v", len(evs), evs)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		reason  string
		deliver bool // let the workers deliver before Expire
		want    int  // deliveries expired
	}{
		{name: "pending deliveries of every push", reason: "answered", want: 3},
		{name: "empty reason takes the default", reason: "", want: 3},
		{name: "delivered pushes stay delivered", reason: "answered", deliver: true, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prod, _ := newCerts()
			e := newTestEnv(t, prod)
			reg := prometheus.NewRegistry()
			e.svc.m = NewMetrics(reg)
			rec := &finalRecorder{}
			e.svc.cfg.OnFinal = rec.onFinal
			e.register("bob", tokenA, store.KindAlert, "phone", prod, time.Now())
			e.register("bob", tokenB, store.KindAlert, "ipad", prod, time.Now())
			e.register("carol", tokenV, store.KindVoIP, "phone", prod, time.Now())
			ids := []string{e.submit("bob", Request{Body: "ring", Source: SourceCall}), e.submit("carol", Request{VoIP: true, Source: SourceCall})}
			if tt.deliver {
				e.run()
				for _, id := range ids {
					e.waitStatus(id, StatusDelivered)
				}
			}
			if err := e.svc.Expire(ctx, ids, tt.reason); err != nil {
				t.Fatal(err)
			}
			reason := tt.reason
			if reason == "" {
				reason = DefaultExpireReason
			}
			if got := counterValue(t, reg, "ringd_pushes_total", map[string]string{"result": "expired", "reason": reason}); got != float64(tt.want) {
				t.Errorf("ringd_pushes_total{expired,%s} = %v, want %d", reason, got, tt.want)
			}
			if tt.deliver {
				return
			}
			e.run() // workers find nothing to send
			for _, id := range ids {
				tr := e.waitStatus(id, StatusExpired)
				for _, d := range tr.Devices {
					if d.Reason != reason || len(d.Attempts) != 0 || !strings.Contains(d.Diagnosis, "stopped ("+reason+")") {
						t.Errorf("device %+v", d)
					}
				}
			}
			if n, err := e.st.OutboxDepth(ctx); err != nil || n != 0 {
				t.Errorf("outbox depth %d, %v", n, err)
			}
			if n := len(e.sender.Calls()); n != 0 {
				t.Errorf("%d sends after Expire", n)
			}
			if evs := rec.events(); len(evs) != 0 {
				t.Errorf("OnFinal called for pushes stopped on purpose: %+v", evs)
			}
		})
	}
}

func TestExpireNothingAndStoreError(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if err := e.svc.Expire(ctx, nil, "answered"); err != nil {
		t.Errorf("Expire(nil) = %v", err)
	}
	if err := e.svc.Expire(ctx, []string{"no-such-push"}, "answered"); err != nil {
		t.Errorf("Expire(unknown) = %v", err)
	}
	_ = e.st.Close()
	if err := e.svc.Expire(ctx, []string{"p"}, "answered"); err == nil {
		t.Error("Expire on a closed store succeeded")
	}
}

// TestExpireInFlight expires a push while its first request is at APNs:
// the answer is recorded, but a delivery that must be retried (or retried
// through the other environment) is not: it stays expired.
func TestExpireInFlight(t *testing.T) {
	tests := []struct {
		name      string
		viaStore  bool // another process expired it: only the store knows
		kind      string
		answer    string // first answer; later ones are 200
		wantState string
		wantSends int
	}{
		{"transient, this process", false, store.KindAlert, "ServiceUnavailable", store.DeliveryExpired, 1},
		{"transient, another process", true, store.KindAlert, "ServiceUnavailable", store.DeliveryExpired, 1},
		{"no answer, this process", false, store.KindAlert, "", store.DeliveryExpired, 1},
		{"environment retry, this process", false, store.KindVoIP, "BadDeviceToken", store.DeliveryExpired, 1},
		{"environment retry, another process", true, store.KindVoIP, "BadDeviceToken", store.DeliveryExpired, 1},
		{"delivered anyway", false, store.KindAlert, "OK", store.DeliveryDelivered, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			prod, dev := newCerts()
			e := newTestEnv(t, prod, dev)
			rec := &finalRecorder{}
			e.svc.cfg.OnFinal = rec.onFinal
			e.register("bob", tokenA, tt.kind, "phone", prod, time.Now())
			started, release := make(chan struct{}), make(chan struct{})
			e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
				if i > 0 {
					return answer(200, "")
				}
				close(started)
				<-release
				switch tt.answer {
				case "":
					return nil, errors.New("connection reset")
				case "OK":
					return answer(200, "")
				case "BadDeviceToken":
					return answer(400, tt.answer)
				}
				return answer(503, tt.answer)
			}
			e.run()
			id := e.submit("bob", Request{Body: "ring", VoIP: tt.kind == store.KindVoIP, Source: SourceCall})
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("no send")
			}
			var err error
			if tt.viaStore {
				_, err = e.st.ExpirePushes(ctx, []string{id}, "answered", time.Now())
			} else {
				err = e.svc.Expire(ctx, []string{id}, "answered")
			}
			if err != nil {
				t.Fatal(err)
			}
			close(release)
			var d DeviceTrace
			checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				tr, err := e.svc.Trace(ctx, testApp, id)
				if err != nil {
					return err
				}
				if d = tr.Devices[0]; len(d.Attempts) == 0 || d.State != tt.wantState {
					return fmt.Errorf("%w: %+v", errNotYet, d)
				}
				return nil
			})
			if n := len(e.sender.Calls()); n != tt.wantSends {
				t.Errorf("%d sends, want %d", n, tt.wantSends)
			}
			if tt.wantState == store.DeliveryExpired {
				if d.Reason != "answered" || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Diagnosis, "stopped (answered)") {
					t.Errorf("device %+v", d)
				}
				if n, err := e.st.OutboxDepth(ctx); err != nil || n != 0 {
					t.Errorf("expired delivery back in the outbox: depth %d, %v", n, err)
				}
				if evs := rec.events(); len(evs) != 0 {
					t.Errorf("OnFinal for a stopped push: %+v", evs)
				}
			}
		})
	}
}

// TestExpireAfterClaimBeforeSend covers a worker that claimed a delivery
// just before Expire: it must not send it.
func TestExpireAfterClaimBeforeSend(t *testing.T) {
	ctx := context.Background()
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	reg := prometheus.NewRegistry()
	e.svc.m = NewMetrics(reg)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	id := e.submit("bob", Request{Body: "ring", Source: SourceCall})
	now := e.clock.Now()
	ds, err := e.st.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claimed %d, %v", len(ds), err)
	}
	if err := e.svc.Expire(ctx, []string{id}, "cancelled"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.deliver(ctx, &ds[0]); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sender.Calls()); n != 0 {
		t.Errorf("%d sends", n)
	}
	tr, err := e.svc.Trace(ctx, testApp, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := tr.Devices[0]; d.State != store.DeliveryExpired || d.Reason != "cancelled" || len(d.Attempts) != 0 {
		t.Errorf("device %+v", d)
	}
	if got := counterValue(t, reg, "ringd_pushes_total", map[string]string{"result": "expired"}); got != 1 {
		t.Errorf("expired counted %v times, want once", got)
	}
	if got := counterValue(t, reg, "ringd_push_accept_to_request_seconds", nil); got != 0 {
		t.Errorf("latency observed for a push never sent: %v", got)
	}
}

func TestAcceptToRequestLatency(t *testing.T) {
	tests := []struct {
		name      string
		source    string
		label     string
		transient bool // the first attempt fails: still one observation
	}{
		{"api by default", "", SourceAPI, false},
		{"call", SourceCall, SourceCall, false},
		{"once per delivery despite a retry", SourceCall, SourceCall, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prod, _ := newCerts()
			e := newTestEnv(t, prod)
			reg := prometheus.NewRegistry()
			e.svc.m = NewMetrics(reg)
			e.register("bob", tokenA, store.KindAlert, "phone", prod, time.Now())
			e.register("bob", tokenB, store.KindAlert, "ipad", prod, time.Now())
			if tt.transient {
				e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
					if i < 2 {
						return answer(503, "ServiceUnavailable")
					}
					return answer(200, "")
				}
			}
			e.run()
			e.waitStatus(e.submit("bob", Request{Body: "ring", Source: tt.source}), StatusDelivered)
			if got := counterValue(t, reg, "ringd_push_accept_to_request_seconds", map[string]string{"source": tt.label}); got != 2 {
				t.Errorf("observations with source=%s: %v, want 2 (one per device)", tt.label, got)
			}
			if got := counterValue(t, reg, "ringd_push_accept_to_request_seconds", nil); got != 2 {
				t.Errorf("observations in all: %v, want 2", got)
			}
		})
	}
}

func TestExcludeDevicesEndToEnd(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "phone", prod, time.Now())
	e.register("bob", tokenB, store.KindAlert, "ipad", prod, time.Now())
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "ring", ExcludeDevices: []string{"phone"}}), StatusDelivered)
	if len(tr.Devices) != 1 || tr.Devices[0].DeviceID != "ipad" {
		t.Errorf("devices %+v", tr.Devices)
	}
	id := e.submit("bob", Request{Body: "ring", ExcludeDevices: []string{"phone", "ipad"}})
	tr, err := e.svc.Trace(context.Background(), testApp, id)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status != StatusNoDevices || !strings.Contains(tr.Diagnosis, "excluded 2 device(s)") {
		t.Errorf("trace %+v", tr)
	}
	if _, err := e.svc.Submit(context.Background(), testApp, "bob", Request{Source: "cron"}); !errors.Is(err, &Error{Code: CodeBadSource}) {
		t.Errorf("bad source: %v", err)
	}
}
