package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/postgres"
	"github.com/ringd/ringd/internal/store/sqlite"
)

// openStore opens PostgreSQL when --database names it, else SQLite in the
// data directory. Both run their migrations before returning.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.Database != "" {
		st, err := postgres.Open(ctx, cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "ringd.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return st, nil
}
