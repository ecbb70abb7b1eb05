package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the result as a table for people.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "scenario %s — %s\n", r.Scenario, r.Target)
	keys := make([]string, 0, len(r.Params))
	for k := range r.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ps []string
	for _, k := range keys {
		ps = append(ps, fmt.Sprintf("%s=%v", k, r.Params[k]))
	}
	fmt.Fprintf(w, "params: %s\n\n", strings.Join(ps, " "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	runs := len(r.Metrics) > 0 && len(r.Metrics[0].Values) > 1
	if runs {
		fmt.Fprintln(tw, "METRIC\tMEDIAN\tRUNS\tUNIT\tHOW")
	} else {
		fmt.Fprintln(tw, "METRIC\tVALUE\tUNIT\tHOW")
	}
	for _, m := range r.Metrics {
		if runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, format(m.Value), spread(m.Values), m.Unit, m.How)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, format(m.Value), m.Unit, m.How)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// WriteJSON writes the result as one JSON object (NaN becomes null).
func (r *Result) WriteJSON(w io.Writer) error {
	out := *r
	out.Metrics = make([]Metric, len(r.Metrics))
	type jm struct {
		Name   string     `json:"name"`
		Value  *float64   `json:"value"`
		Unit   string     `json:"unit"`
		How    string     `json:"how,omitempty"`
		Values []*float64 `json:"values,omitempty"`
	}
	ms := make([]jm, len(r.Metrics))
	for i, m := range r.Metrics {
		ms[i] = jm{Name: m.Name, Unit: m.Unit, How: m.How, Value: finite(m.Value)}
		for _, v := range m.Values {
			ms[i].Values = append(ms[i].Values, finite(v))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Scenario string             `json:"scenario"`
		Target   string             `json:"target"`
		Params   map[string]any     `json:"params"`
		Metrics  []jm               `json:"metrics"`
		Series   map[string][]Point `json:"series,omitempty"`
		Notes    []string           `json:"notes,omitempty"`
	}{r.Scenario, r.Target, r.Params, ms, r.Series, r.Notes})
}

// finite is v, or nil (JSON null) for NaN and infinities.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
