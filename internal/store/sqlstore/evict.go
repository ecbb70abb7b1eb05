package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// evictDevices deletes and returns the registrations of the user's devices
// beyond maxDevices, oldest device first. It runs in PutRegistration's
// transaction, so it sees the upsert and nobody else's half-done one.
func evictDevices(ctx context.Context, tx *sql.Tx, r *store.Registration, maxDevices int) ([]store.Registration, error) {
	rows, err := tx.QueryContext(ctx, selectRegistrations, r.SDKAppID, r.UserID)
	if err != nil {
		return nil, err
	}
	regs, err := collect(rows, scanRegistration)
	if err != nil {
		return nil, err
	}
	evicted := evictions(regs, r.DeviceKey(), maxDevices)
	for _, e := range evicted {
		if _, err := tx.ExecContext(ctx, deleteRegistration, e.SDKAppID, e.Token); err != nil {
			return nil, err
		}
	}
	return evicted, nil
}

// evictions picks, from one user's registrations (sorted by registered_at),
// those of the devices to drop so that at most maxDevices remain. A
// device's age is its newest registration. Ties go against devices other
// than keep (the one just registered), then by device key, so the result
// does not depend on row order.
func evictions(regs []store.Registration, keep string, maxDevices int) []store.Registration {
	newest := map[string]time.Time{}
	for _, r := range regs {
		k := r.DeviceKey()
		if t, ok := newest[k]; !ok || r.RegisteredAt.After(t) {
			newest[k] = r.RegisteredAt
		}
	}
	if maxDevices <= 0 || len(newest) <= maxDevices {
		return nil
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := newest[a].Compare(newest[b]); c != 0 {
			return c
		}
		if (a == keep) != (b == keep) {
			if a == keep {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	drop := map[string]bool{}
	for _, k := range keys[:len(keys)-maxDevices] {
		drop[k] = true
	}
	var out []store.Registration
	for _, r := range regs {
		if drop[r.DeviceKey()] {
			out = append(out, r)
		}
	}
	return out
}
