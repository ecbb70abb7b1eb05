package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/ringd/ringd/internal/store"
)

const attemptColumns = `id, delivery_id, push_id, at, environment, host, certificate_id,
	apns_id, apns_unique_id, status, reason, latency_ns, classification, diagnosis`

func scanAttempt(row scanner) (store.Attempt, error) {
	var (
		a       store.Attempt
		at, lat int64
	)
	err := row.Scan(&a.ID, &a.DeliveryID, &a.PushID, &at, &a.Environment, &a.Host, &a.CertificateID,
		&a.APNsID, &a.APNsUniqueID, &a.Status, &a.Reason, &lat, &a.Classification, &a.Diagnosis)
	a.At, a.Latency = fromMS(at), time.Duration(lat)
	return a, err
}

const insertAttemptQuery = `INSERT INTO attempts (delivery_id, push_id, at, environment, host,
	certificate_id, apns_id, apns_unique_id, status, reason, latency_ns, classification, diagnosis)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id`

// insertAttempt runs insertAttemptQuery, prepared, for a in d's transaction.
func insertAttempt(ctx context.Context, stmt *sql.Stmt, a *store.Attempt, d *store.Delivery) error {
	if a.DeliveryID == 0 {
		a.DeliveryID = d.ID
	}
	if a.PushID == "" {
		a.PushID = d.PushID
	}
	return stmt.QueryRowContext(ctx, a.DeliveryID, a.PushID, ms(a.At), a.Environment,
		a.Host, a.CertificateID, a.APNsID, a.APNsUniqueID, a.Status, a.Reason, int64(a.Latency),
		a.Classification, a.Diagnosis).Scan(&a.ID)
}

const selectAttempts = `SELECT ` + attemptColumns + ` FROM attempts WHERE push_id = $1 ORDER BY id`

// Attempts lists a push's attempts over all its deliveries, in the order
// they were recorded.
func (db *DB) Attempts(ctx context.Context, pushID string) ([]store.Attempt, error) {
	rows, err := db.r.QueryContext(ctx, selectAttempts, pushID)
	if err != nil {
		return nil, db.fail("attempts", err)
	}
	as, err := collect(rows, scanAttempt)
	return as, db.fail("attempts", err)
}
