package apnssim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPushToken measures accepted token-authenticated pushes over one
// HTTP/2 connection, spread over many devices.
func BenchmarkPushToken(b *testing.B) {
	sim, err := New(Config{InboxLimit: 10})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	key := mustV(sim.IssueKey(""))
	tokens := make([]string, 256)
	for i := range tokens {
		tokens[i] = mustV(sim.MintDevice(testBundle, EnvDevelopment, KindAlert))
	}
	jwt := bearer(signJWT(b, key.P8, key.KeyID, key.TeamID, time.Now().Unix()))
	c := newClient(b, sim)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64) // many streams in flight, as ringd's sender workers do
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok := tokens[next.Add(1)%int64(len(tokens))]
			req, _ := http.NewRequest(http.MethodPost, sim.SandboxURL()+devicePath+tok, strings.NewReader(alertBody))
			req.Header = http.Header{"Authorization": {jwt}, "Apns-Topic": {testBundle}, "Apns-Push-Type": {"alert"}}
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}
