package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/postgres"
	"github.com/ringd/ringd/internal/store/sqlite"
)

// openStore opens PostgreSQL when --database names it, else SQLite in the
// data directory. Both run their migrations before returning.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Database != "" {
		st, err := postgres.Open(ctx, cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "ringd.db")
	st, err := sqlite.Open(ctx, path, sqlite.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	// The data directory's lock makes this process the database's only
	// user, so leases left by a crash are stale: free them, and what was in
	// flight is sent again at once instead of after its lease.
	if n, err := st.ReleaseLeases(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	} else if n > 0 {
		log.Info("released leases left by an unclean stop", "deliveries_and_webhooks", n)
	}
	return st, nil
}
