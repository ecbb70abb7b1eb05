package apns

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkSend measures the client's whole path (validation, pool,
// cached JWT, headers, HTTP/2 round trip, answer) against the local fake
// APNs, from parallel goroutines as the push workers call it: each
// request with a context bounded to a third of the lease.
func BenchmarkSend(b *testing.B) {
	f := newFakeAPNs(b, fakeOptions{})
	c := newTestClient(b, f, nil)
	cred := newP8Credential(b, 1)
	if _, err := c.Send(context.Background(), cred, voipNotification()); err != nil {
		b.Fatal(err)
	}
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) {}) // keep no history
	b.ReportAllocs()
	b.SetParallelism(8) // 8×GOMAXPROCS requests in flight, like a worker pool
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := voipNotification()
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := c.Send(ctx, cred, n)
			cancel()
			if err != nil || resp.Status != 200 {
				b.Errorf("Send = %v, %v", resp, err)
				return
			}
		}
	})
	b.ReportMetric(float64(c.OpenConnections()), "conns")
}
