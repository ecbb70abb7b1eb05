package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

func TestEvictionsTies(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	reg := func(token, device string) store.Registration {
		return store.Registration{Token: token, DeviceID: device, RegisteredAt: t0}
	}
	tests := []struct {
		name string
		regs []store.Registration
		keep string
		max  int
		want []string
	}{
		{"the registering device is kept on a tie", []store.Registration{reg("a", "x"), reg("b", "y")}, "d:x", 1, []string{"b"}},
		{"then the device key decides", []store.Registration{reg("a", "z"), reg("b", "y"), reg("c", "x")}, "d:z", 1, []string{"b", "c"}},
		{"no limit", []store.Registration{reg("a", "x"), reg("b", "y")}, "d:x", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range evictions(tt.regs, tt.keep, tt.max) {
				got = append(got, r.Token)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("evicted %v, want %v", got, tt.want)
			}
		})
	}
}
