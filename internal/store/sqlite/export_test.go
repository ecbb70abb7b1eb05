package sqlite

import "context"

// SchemaVersion is the number of migrations this binary knows.
var SchemaVersion = len(migrations)

// OpenVersion opens path migrated by only the first n migrations, as the
// ringd release with schema version n would.
func OpenVersion(ctx context.Context, path string, n int) (*Store, error) {
	d := dialect
	d.Migrations = migrations[:n:n]
	return open(ctx, path, d)
}
