package jsondepth

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExceeds(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  int
	}{
		{`{}`, 1, -1},
		{`{"a":[1]}`, 1, 5},
		{`{"a":[1]}`, 2, -1},
		{`"[[[[["`, 1, -1},                 // brackets in a string
		{`{"a":"\"[[["}`, 1, -1},           // an escaped quote does not end the string
		{`[[]][[]]`, 2, -1},                // depth goes back down
		{strings.Repeat("[", 100), 32, 32}, // the 33rd bracket
		{``, 0, -1},
	}
	for _, tt := range tests {
		if got := Exceeds([]byte(tt.in), tt.limit); got != tt.want {
			t.Errorf("Exceeds(%.40q, %d) = %d, want %d", tt.in, tt.limit, got, tt.want)
		}
	}
}

// FuzzExceeds: on valid JSON, Exceeds agrees with the depth a parser sees.
func FuzzExceeds(f *testing.F) {
	for _, s := range []string{`{}`, `[[1],{"a":"[\"]"}]`, `"x"`, `[[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off := Exceeds(b, 4)
		if off >= len(b) || off < -1 {
			t.Fatalf("offset %d out of range for %d bytes", off, len(b))
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if (off >= 0) != (depthOf(v) > 4) {
			t.Fatalf("Exceeds = %d but the parsed depth is %d", off, depthOf(v))
		}
	})
}

func depthOf(v any) int {
	d := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}
