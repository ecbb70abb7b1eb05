package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/ringd/ringd/internal/store"
)

const appColumns = `sdk_app_id, name, secret_sealed, created_at, updated_at,
	previous_secret_sealed, previous_secret_until`

func scanApp(row scanner) (store.App, error) {
	var (
		a                           store.App
		createdAt, updatedAt, until int64
	)
	err := row.Scan(&a.SDKAppID, &a.Name, &a.SecretSealed, &createdAt, &updatedAt,
		&a.PreviousSecretSealed, &until)
	a.CreatedAt, a.UpdatedAt, a.PreviousSecretUntil = fromMS(createdAt), fromMS(updatedAt), fromMS(until)
	return a, err
}

// A new app has no previous secret; the insert names only the columns of
// the first schema version.
const insertApp = `INSERT INTO apps (sdk_app_id, name, secret_sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`

// CreateApp inserts a; a zero CreatedAt becomes now, a zero UpdatedAt
// becomes CreatedAt. A taken SDKAppID fails with store.ErrConflict.
func (db *DB) CreateApp(ctx context.Context, a *store.App) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	_, err := db.w.ExecContext(ctx, insertApp,
		a.SDKAppID, a.Name, a.SecretSealed, ms(a.CreatedAt), ms(a.UpdatedAt))
	return db.fail("create app", err)
}

const selectApp = `SELECT ` + appColumns + ` FROM apps WHERE sdk_app_id = $1`

func (db *DB) App(ctx context.Context, sdkAppID int64) (*store.App, error) {
	stmt, err := db.preparedRead(ctx, selectApp)
	if err != nil {
		return nil, db.fail("app", err)
	}
	a, err := scanApp(stmt.QueryRowContext(ctx, sdkAppID))
	if err != nil {
		return nil, db.fail("app", err)
	}
	return &a, nil
}

const selectApps = `SELECT ` + appColumns + ` FROM apps ORDER BY sdk_app_id`

func (db *DB) Apps(ctx context.Context) ([]store.App, error) {
	rows, err := db.r.QueryContext(ctx, selectApps)
	if err != nil {
		return nil, db.fail("apps", err)
	}
	apps, err := collect(rows, scanApp)
	return apps, db.fail("apps", err)
}

const updateAppSecret = `UPDATE apps SET secret_sealed = $2, updated_at = $3 WHERE sdk_app_id = $1`

func (db *DB) UpdateAppSecret(ctx context.Context, sdkAppID int64, sealed []byte, at time.Time) error {
	err := mustAffect(db.w.ExecContext(ctx, updateAppSecret, sdkAppID, sealed, ms(at)))
	return db.fail("update app secret", err)
}

// The previous secret is the one being replaced, in the same statement, so
// two rotations at once cannot lose the secret in between.
const rotateAppSecret = `UPDATE apps SET previous_secret_sealed = secret_sealed, previous_secret_until = $3,
	secret_sealed = $2, updated_at = $4 WHERE sdk_app_id = $1`

const rotateAppSecretNoGrace = `UPDATE apps SET previous_secret_sealed = NULL, previous_secret_until = 0,
	secret_sealed = $2, updated_at = $3 WHERE sdk_app_id = $1`

func (db *DB) RotateAppSecret(ctx context.Context, sdkAppID int64, sealed []byte, previousUntil, at time.Time) error {
	var err error
	if previousUntil.After(at) {
		err = mustAffect(db.w.ExecContext(ctx, rotateAppSecret, sdkAppID, sealed, ms(previousUntil), ms(at)))
	} else {
		err = mustAffect(db.w.ExecContext(ctx, rotateAppSecretNoGrace, sdkAppID, sealed, ms(at)))
	}
	return db.fail("rotate app secret", err)
}

// Children first: the foreign keys cascade too, but explicit deletes keep
// the rule visible and do not depend on PRAGMA foreign_keys.
var deleteAppQueries = []string{
	`DELETE FROM attempts WHERE push_id IN (SELECT id FROM pushes WHERE sdk_app_id = $1)`,
	`DELETE FROM deliveries WHERE push_id IN (SELECT id FROM pushes WHERE sdk_app_id = $1)`,
	`DELETE FROM pushes WHERE sdk_app_id = $1`,
	`DELETE FROM registrations WHERE sdk_app_id = $1`,
	`DELETE FROM certificates WHERE sdk_app_id = $1`,
	`DELETE FROM call_participants WHERE sdk_app_id = $1`,
	`DELETE FROM calls WHERE sdk_app_id = $1`,
	`DELETE FROM sessions WHERE sdk_app_id = $1`,
	`DELETE FROM webhooks WHERE sdk_app_id = $1`,
}

const deleteApp = `DELETE FROM apps WHERE sdk_app_id = $1`

// DeleteApp removes the app and everything that belongs to it.
func (db *DB) DeleteApp(ctx context.Context, sdkAppID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range deleteAppQueries {
			if _, err := tx.ExecContext(ctx, q, sdkAppID); err != nil {
				return err
			}
		}
		return mustAffect(tx.ExecContext(ctx, deleteApp, sdkAppID))
	})
	return db.fail("delete app", err)
}

const selectAppSettings = `SELECT settings FROM apps WHERE sdk_app_id = $1`

// AppSettings returns the app's settings JSON as stored, "{}" when never
// set; an unknown app fails with store.ErrNotFound.
func (db *DB) AppSettings(ctx context.Context, sdkAppID int64) ([]byte, error) {
	stmt, err := db.preparedRead(ctx, selectAppSettings)
	if err != nil {
		return nil, db.fail("app settings", err)
	}
	var settings string
	if err := stmt.QueryRowContext(ctx, sdkAppID).Scan(&settings); err != nil {
		return nil, db.fail("app settings", err)
	}
	if settings == "" {
		settings = "{}"
	}
	return []byte(settings), nil
}

const updateAppSettings = `UPDATE apps SET settings = $2 WHERE sdk_app_id = $1`

// PutAppSettings stores settings (empty means "{}") without looking
// inside: the settings package validates them. An unknown app fails with
// store.ErrNotFound.
func (db *DB) PutAppSettings(ctx context.Context, sdkAppID int64, settings []byte) error {
	s := string(settings) // TEXT, not a BLOB
	if s == "" {
		s = "{}"
	}
	err := mustAffect(db.w.ExecContext(ctx, updateAppSettings, sdkAppID, s))
	return db.fail("put app settings", err)
}
