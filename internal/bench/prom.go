package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// series are the samples of one /metrics scrape: "name{labels}" -> value,
// labels as Prometheus writes them (sorted by name).
type series map[string]float64

func scrape(ctx context.Context, hc *http.Client, baseURL string) (series, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format (only what ringd writes:
// no timestamps, no escaped quotes in the label values we use).
func parseMetrics(r io.Reader) (series, error) {
	out := series{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// sum adds every sample of name whose labels contain all of want
// (`key="value"` strings).
func (s series) sum(name string, want ...string) float64 {
	var t float64
	for k, v := range s {
		if !strings.HasPrefix(k, name) {
			continue
		}
		rest := k[len(name):]
		if rest != "" && rest[0] != '{' {
			continue
		}
		if hasLabels(rest, want) {
			t += v
		}
	}
	return t
}

func hasLabels(labels string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(labels, w) {
			return false
		}
	}
	return true
}

// histogram is the cumulative bucket counts of a histogram, summed over
// the series that match the wanted labels.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
}

func (s series) histogram(name string, want ...string) histogram {
	acc := map[float64]float64{}
	prefix := name + "_bucket{"
	for k, v := range s {
		if !strings.HasPrefix(k, prefix) || !hasLabels(k, want) {
			continue
		}
		j := strings.Index(k, `le="`)
		if j < 0 {
			continue
		}
		end := strings.IndexByte(k[j+4:], '"')
		le, err := strconv.ParseFloat(k[j+4:j+4+end], 64)
		if err != nil {
			continue
		}
		acc[le] += v
	}
	h := histogram{}
	for b := range acc {
		h.bounds = append(h.bounds, b)
	}
	sort.Float64s(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, acc[b])
	}
	return h
}

// minus is h - before, bucket by bucket: the observations in between.
func (h histogram) minus(before histogram) histogram {
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i, b := range h.bounds {
		out.counts[i] = h.counts[i]
		for j, bb := range before.bounds {
			if bb == b {
				out.counts[i] -= before.counts[j]
			}
		}
	}
	return out
}

func (h histogram) total() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile in seconds as Prometheus'
// histogram_quantile does: linear within the bucket that holds it. An
// answer in the +Inf bucket is the highest finite bound (a lower bound
// of the truth). NaN when there are no observations.
func (h histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return math.NaN()
	}
	rank := q * n
	lower, prev := 0.0, 0.0
	for i, b := range h.bounds {
		c := h.counts[i]
		if c >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			if c == prev {
				return b
			}
			return lower + (b-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = b, c
	}
	return lower
}

// addRuntime reports the Go runtime's work per unit (a push, an invite, a
// call) between two scrapes of ringd's /metrics: objects and bytes
// allocated, and the garbage collections over the time d between them. On
// one core the collector's mark work stops everything else for
// milliseconds at a time (docs/performance.md), so the allocations per
// unit set how often the tail meets it. The bench's own scrapes count
// too: a few thousand allocations each, against millions per run.
func addRuntime(r *Result, before, after series, n int64, unit string, d time.Duration) {
	if n <= 0 || d <= 0 {
		return
	}
	delta := func(name string) float64 { return after.sum(name) - before.sum(name) }
	mallocs := delta("go_memstats_mallocs_total")
	if mallocs <= 0 {
		r.note("no Go runtime figures in ringd's /metrics: allocations and collections left out")
		return
	}
	per := func(v float64) float64 { return v / float64(n) }
	r.add("ringd allocations per "+unit, per(mallocs), "objects", "go_memstats_mallocs_total delta ÷ "+plural(unit))
	r.add("ringd allocated per "+unit, per(delta("go_memstats_alloc_bytes_total"))/1024, "KiB", "go_memstats_alloc_bytes_total delta ÷ "+plural(unit))
	r.add("ringd garbage collections", delta("go_gc_duration_seconds_count")/d.Seconds(), "per s", "go_gc_duration_seconds_count delta ÷ time measured")
}
