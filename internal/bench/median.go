package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Median combines runs of one scenario: each metric becomes the median of
// its values over the runs (NaN values aside), and keeps every run's value
// in Values, so a table shows both the figure and its spread. The series
// and notes are those of the run whose first metric is the median's, the
// notes of the others added when they differ.
func Median(runs []*Result) (*Result, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("bench: no runs to combine")
	}
	first := runs[0]
	out := &Result{Scenario: first.Scenario, Target: first.Target, Params: map[string]any{}, Series: first.Series}
	for k, v := range first.Params {
		out.Params[k] = v
	}
	out.Params["runs"] = len(runs)
	for _, m := range first.Metrics {
		var vals, finite []float64
		for _, r := range runs {
			v := metricValue(r, m.Name)
			vals = append(vals, v)
			if !math.IsNaN(v) {
				finite = append(finite, v)
			}
		}
		out.Metrics = append(out.Metrics, Metric{Name: m.Name, Value: median(finite), Unit: m.Unit, How: m.How, Values: vals})
	}
	seen := map[string]bool{}
	for i, r := range runs {
		for _, n := range r.Notes {
			if !seen[n] {
				seen[n] = true
				if len(runs) > 1 && i > 0 {
					n = fmt.Sprintf("run %d: %s", i+1, n)
				}
				out.Notes = append(out.Notes, n)
			}
		}
	}
	return out, nil
}

func metricValue(r *Result, name string) float64 {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	return math.NaN()
}

// median is the middle value, or the mean of the two middle ones; NaN for
// none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread renders the values of the runs, e.g. "114 / 123.8 / 132.2".
func spread(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = format(v)
	}
	return strings.Join(parts, " / ")
}
