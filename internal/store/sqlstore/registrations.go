package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/store"
)

const registrationColumns = `sdk_app_id, user_id, token, certificate_id, environment, kind,
	device_id, registered_at, last_success_at, last_failure_at, last_failure_reason`

func scanRegistration(row scanner) (store.Registration, error) {
	var (
		r                            store.Registration
		registered, success, failure int64
	)
	err := row.Scan(&r.SDKAppID, &r.UserID, &r.Token, &r.CertificateID, &r.Environment, &r.Kind,
		&r.DeviceID, &registered, &success, &failure, &r.LastFailureReason)
	r.RegisteredAt, r.LastSuccessAt, r.LastFailureAt = fromMS(registered), fromMS(success), fromMS(failure)
	return r, err
}

// A registration is replaced whole: registering again is a fresh binding,
// so the results of the old one do not carry over.
const upsertRegistration = `INSERT INTO registrations (` + registrationColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (sdk_app_id, token) DO UPDATE SET
	user_id = excluded.user_id,
	certificate_id = excluded.certificate_id,
	environment = excluded.environment,
	kind = excluded.kind,
	device_id = excluded.device_id,
	registered_at = excluded.registered_at,
	last_success_at = excluded.last_success_at,
	last_failure_at = excluded.last_failure_at,
	last_failure_reason = excluded.last_failure_reason`

// PutRegistration upserts r by (app, token), then evicts the user's
// oldest devices beyond maxDevices (<= 0: no limit), all in one
// transaction. A zero RegisteredAt becomes now.
func (db *DB) PutRegistration(ctx context.Context, r *store.Registration, maxDevices int) ([]store.Registration, error) {
	if r.RegisteredAt.IsZero() {
		r.RegisteredAt = now()
	}
	var evicted []store.Registration
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, upsertRegistration,
			r.SDKAppID, r.UserID, r.Token, r.CertificateID, r.Environment, r.Kind,
			r.DeviceID, ms(r.RegisteredAt), ms(r.LastSuccessAt), ms(r.LastFailureAt), r.LastFailureReason)
		if err != nil || maxDevices <= 0 {
			return err
		}
		evicted, err = evictDevices(ctx, tx, r, maxDevices)
		return err
	})
	if err != nil {
		return nil, db.fail("put registration", err)
	}
	return evicted, nil
}

const selectRegistration = `SELECT ` + registrationColumns + `
FROM registrations WHERE sdk_app_id = $1 AND token = $2`

func (db *DB) Registration(ctx context.Context, sdkAppID int64, token string) (*store.Registration, error) {
	stmt, err := db.preparedRead(ctx, selectRegistration)
	if err != nil {
		return nil, db.fail("registration", err)
	}
	r, err := scanRegistration(stmt.QueryRowContext(ctx, sdkAppID, token))
	if err != nil {
		return nil, db.fail("registration", err)
	}
	return &r, nil
}

const selectRegistrations = `SELECT ` + registrationColumns + `
FROM registrations WHERE sdk_app_id = $1 AND user_id = $2 ORDER BY registered_at, token`

// Registrations lists the user's registrations, oldest first.
func (db *DB) Registrations(ctx context.Context, sdkAppID int64, userID string) ([]store.Registration, error) {
	stmt, err := db.preparedRead(ctx, selectRegistrations)
	if err != nil {
		return nil, db.fail("registrations", err)
	}
	rows, err := stmt.QueryContext(ctx, sdkAppID, userID)
	if err != nil {
		return nil, db.fail("registrations", err)
	}
	regs, err := collect(rows, scanRegistration)
	return regs, db.fail("registrations", err)
}

const selectRegistrationsOfUsers = `SELECT ` + registrationColumns + `
FROM registrations WHERE sdk_app_id = `

// RegistrationsOfUsers reads the registrations of all of userIDs with IN
// lists of up to maxInList users, instead of one query per user. Each
// user's registrations are oldest first, as Registrations lists them.
func (db *DB) RegistrationsOfUsers(ctx context.Context, sdkAppID int64, userIDs []string) (map[string][]store.Registration, error) {
	users := slices.Clone(userIDs)
	slices.Sort(users)
	users = slices.Compact(users)
	out := make(map[string][]store.Registration, len(users))
	for chunk := range slices.Chunk(users, maxInList) {
		args := append([]any{sdkAppID}, anys(chunk)...)
		rows, err := db.r.QueryContext(ctx,
			selectRegistrationsOfUsers+db.params(1, 1)+" AND user_id IN ("+db.params(2, len(chunk))+
				") ORDER BY registered_at, token", args...)
		if err != nil {
			return nil, db.fail("registrations of users", err)
		}
		err = eachRow(rows, func(row scanner) error {
			r, err := scanRegistration(row)
			if err != nil {
				return err
			}
			out[r.UserID] = append(out[r.UserID], r)
			return nil
		})
		if err != nil {
			return nil, db.fail("registrations of users", err)
		}
	}
	return out, nil
}

const deleteRegistration = `DELETE FROM registrations WHERE sdk_app_id = $1 AND token = $2`

func (db *DB) DeleteRegistration(ctx context.Context, sdkAppID int64, token string) error {
	err := mustAffect(db.w.ExecContext(ctx, deleteRegistration, sdkAppID, token))
	return db.fail("delete registration", err)
}

const (
	deleteRegistrationIfBefore = `DELETE FROM registrations
WHERE sdk_app_id = $1 AND token = $2 AND registered_at < $3`
	registrationExists = `SELECT COUNT(*) FROM registrations WHERE sdk_app_id = $1 AND token = $2`
)

// RemoveRegistrationIfBefore deletes the registration only if it was
// registered before the given time: a 410 from Apple says the token died
// at that time, and a registration made after it is a new, live one. It
// returns (false, nil) for such a newer registration and an error
// wrapping store.ErrNotFound when there is none at all.
func (db *DB) RemoveRegistrationIfBefore(ctx context.Context, sdkAppID int64, token string, before time.Time) (bool, error) {
	var removed bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := mustAffect(tx.ExecContext(ctx, deleteRegistrationIfBefore, sdkAppID, token, ms(before)))
		if !errors.Is(err, store.ErrNotFound) {
			removed = err == nil
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, registrationExists, sdkAppID, token).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	return removed, db.fail("remove registration", err)
}

const (
	markRegistrationSuccess = `UPDATE registrations SET last_success_at = $3
WHERE sdk_app_id = $1 AND token = $2`
	markRegistrationFailure = `UPDATE registrations SET last_failure_at = $3, last_failure_reason = $4
WHERE sdk_app_id = $1 AND token = $2`
)

// MarkRegistrationResult records a success (reason == "") or a failure;
// the other half keeps its last value.
func (db *DB) MarkRegistrationResult(ctx context.Context, sdkAppID int64, token string, at time.Time, reason string) error {
	var err error
	if reason == "" {
		err = mustAffect(db.w.ExecContext(ctx, markRegistrationSuccess, sdkAppID, token, ms(at)))
	} else {
		err = mustAffect(db.w.ExecContext(ctx, markRegistrationFailure, sdkAppID, token, ms(at), reason))
	}
	return db.fail("mark registration", err)
}

const moveRegistration = `UPDATE registrations SET certificate_id = $3, environment = $4
WHERE sdk_app_id = $1 AND token = $2`

func (db *DB) MoveRegistration(ctx context.Context, sdkAppID int64, token string, certificateID int64, env string) error {
	err := mustAffect(db.w.ExecContext(ctx, moveRegistration, sdkAppID, token, certificateID, env))
	return db.fail("move registration", err)
}
