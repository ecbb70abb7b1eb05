package postgres

import "context"

// SchemaVersion is the number of migrations this binary knows.
var SchemaVersion = len(migrations)

// OpenVersion opens dsn migrated by only the first n migrations, as the
// ringd release with schema version n would.
func OpenVersion(ctx context.Context, dsn string, n int) (*Store, error) {
	d := dialect
	d.Migrations = migrations[:n:n]
	return open(ctx, dsn, d)
}
