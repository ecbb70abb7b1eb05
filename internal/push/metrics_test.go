package push

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringd/ringd/internal/store"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.m = NewMetrics(reg)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.run()
	e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)

	// The final count follows the stored state by a moment: poll for it.
	got := map[string]float64{}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		families, err := reg.Gather()
		if err != nil {
			return err
		}
		got = map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				switch {
				case m.GetCounter() != nil:
					got[f.GetName()] += m.GetCounter().GetValue()
				case m.GetHistogram() != nil:
					got[f.GetName()] += float64(m.GetHistogram().GetSampleCount())
				default:
					got[f.GetName()] += 0
				}
			}
		}
		if got["ringd_pushes_total"] != 1 {
			return errNotYet
		}
		return nil
	})
	for _, name := range []string{"ringd_pushes_total", "ringd_push_attempts_total", "ringd_apns_request_duration_seconds"} {
		if got[name] != 1 {
			t.Errorf("%s = %v, want 1 (all: %v)", name, got[name], got)
		}
	}
	if _, ok := got["ringd_push_outbox_depth"]; !ok {
		t.Errorf("outbox depth missing: %v", got)
	}
	var nilMetrics *Metrics
	nilMetrics.final("delivered", "")
	nilMetrics.attempt("delivered", "production", time.Millisecond, true)
	nilMetrics.depth(3)
}
