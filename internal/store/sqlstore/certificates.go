package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/ringd/ringd/internal/store"
)

const certificateColumns = `id, sdk_app_id, type, environment, bundle_id, topics, voip,
	expires_at, key_id, team_id, secret_sealed, created_at,
	last_success_at, last_error_at, last_error`

func scanCertificate(row scanner) (store.Certificate, error) {
	var (
		c                                 store.Certificate
		topics                            string
		expires, created, success, failed int64
	)
	err := row.Scan(&c.ID, &c.SDKAppID, &c.Type, &c.Environment, &c.BundleID, &topics, &c.VoIP,
		&expires, &c.KeyID, &c.TeamID, &c.SecretSealed, &created,
		&success, &failed, &c.LastError)
	if err != nil {
		return c, err
	}
	c.ExpiresAt, c.CreatedAt = fromMS(expires), fromMS(created)
	c.LastSuccessAt, c.LastErrorAt = fromMS(success), fromMS(failed)
	c.Topics, err = parseTopics(topics)
	return c, err
}

// The store assigns the ID (from 10001, see the schema).
const insertCertificate = `INSERT INTO certificates (sdk_app_id, type, environment, bundle_id,
	topics, voip, expires_at, key_id, team_id, secret_sealed, created_at,
	last_success_at, last_error_at, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING id`

// CreateCertificates inserts all of certs in one transaction and sets
// their IDs; a zero CreatedAt becomes now.
func (db *DB) CreateCertificates(ctx context.Context, certs []*store.Certificate) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range certs {
			if err := insertCert(ctx, tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range certs {
			c.ID = 0 // the IDs were rolled back with the rows
		}
	}
	return db.fail("create certificates", err)
}

func insertCert(ctx context.Context, tx *sql.Tx, c *store.Certificate) error {
	topics, err := topicsJSON(c.Topics)
	if err != nil {
		return err
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	return tx.QueryRowContext(ctx, insertCertificate,
		c.SDKAppID, c.Type, c.Environment, c.BundleID, topics, c.VoIP,
		ms(c.ExpiresAt), c.KeyID, c.TeamID, c.SecretSealed, ms(c.CreatedAt),
		ms(c.LastSuccessAt), ms(c.LastErrorAt), c.LastError,
	).Scan(&c.ID)
}

const selectCertificate = `SELECT ` + certificateColumns + ` FROM certificates WHERE id = $1`

func (db *DB) Certificate(ctx context.Context, id int64) (*store.Certificate, error) {
	c, err := scanCertificate(db.r.QueryRowContext(ctx, selectCertificate, id))
	if err != nil {
		return nil, db.fail("certificate", err)
	}
	return &c, nil
}

const selectCertificates = `SELECT ` + certificateColumns + `
FROM certificates WHERE sdk_app_id = $1 ORDER BY id`

func (db *DB) Certificates(ctx context.Context, sdkAppID int64) ([]store.Certificate, error) {
	rows, err := db.r.QueryContext(ctx, selectCertificates, sdkAppID)
	if err != nil {
		return nil, db.fail("certificates", err)
	}
	certs, err := collect(rows, scanCertificate)
	return certs, db.fail("certificates", err)
}

const (
	deleteCertificateRegistrations = `DELETE FROM registrations WHERE certificate_id = $1`
	deleteCertificate              = `DELETE FROM certificates WHERE id = $1`
)

// DeleteCertificate removes the certificate and the registrations that
// name it: their tokens cannot be pushed without it.
func (db *DB) DeleteCertificate(ctx context.Context, id int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, deleteCertificateRegistrations, id); err != nil {
			return err
		}
		return mustAffect(tx.ExecContext(ctx, deleteCertificate, id))
	})
	return db.fail("delete certificate", err)
}

// One statement so the count and the existence check see one snapshot.
const countRegistrationsByCertificate = `SELECT
	(SELECT COUNT(*) FROM certificates WHERE id = $1),
	(SELECT COUNT(*) FROM registrations WHERE certificate_id = $1)`

// CountRegistrationsByCertificate fails with store.ErrNotFound when the
// certificate does not exist, rather than counting 0.
func (db *DB) CountRegistrationsByCertificate(ctx context.Context, id int64) (int, error) {
	var certs, n int
	err := db.r.QueryRowContext(ctx, countRegistrationsByCertificate, id).Scan(&certs, &n)
	if err == nil && certs == 0 {
		err = store.ErrNotFound
	}
	return n, db.fail("count registrations", err)
}

const (
	markCertificateSuccess = `UPDATE certificates SET last_success_at = $2 WHERE id = $1`
	markCertificateError   = `UPDATE certificates SET last_error_at = $2, last_error = $3 WHERE id = $1`
)

// MarkCertificateResult records a success (errText == "") or an error;
// the other half keeps its last value so both stay visible.
func (db *DB) MarkCertificateResult(ctx context.Context, id int64, at time.Time, errText string) error {
	var err error
	if errText == "" {
		err = mustAffect(db.w.ExecContext(ctx, markCertificateSuccess, id, ms(at)))
	} else {
		err = mustAffect(db.w.ExecContext(ctx, markCertificateError, id, ms(at), errText))
	}
	return db.fail("mark certificate", err)
}
