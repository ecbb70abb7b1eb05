package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ringd/ringd/internal/store"
)

// DeliveryColumns is what the dialects' claim queries return, in the
// order scanDelivery reads.
const DeliveryColumns = `id, push_id, sdk_app_id, user_id, token, certificate_id, environment,
	kind, device_id, apns_id, state, attempts, next_attempt_at, lease_until, reason, updated_at`

func scanDelivery(row scanner) (store.Delivery, error) {
	var (
		d                    store.Delivery
		next, lease, updated int64
	)
	err := row.Scan(&d.ID, &d.PushID, &d.SDKAppID, &d.UserID, &d.Token, &d.CertificateID, &d.Environment,
		&d.Kind, &d.DeviceID, &d.APNsID, &d.State, &d.Attempts, &next, &lease, &d.Reason, &updated)
	d.NextAttemptAt, d.LeaseUntil, d.UpdatedAt = fromMS(next), fromMS(lease), fromMS(updated)
	return d, err
}

const insertDelivery = `INSERT INTO deliveries (push_id, sdk_app_id, user_id, token, certificate_id,
	environment, kind, device_id, apns_id, state, attempts, next_attempt_at, lease_until, reason, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING id`

func insertDeliveries(ctx context.Context, tx *sql.Tx, p *store.Push, ds []*store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, insertDelivery)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, d := range ds {
		fillDelivery(p, d)
		err := stmt.QueryRowContext(ctx, d.PushID, d.SDKAppID, d.UserID, d.Token, d.CertificateID,
			d.Environment, d.Kind, d.DeviceID, d.APNsID, d.State, d.Attempts,
			ms(d.NextAttemptAt), ms(d.LeaseUntil), d.Reason, ms(d.UpdatedAt)).Scan(&d.ID)
		if err != nil {
			return fmt.Errorf("delivery %d: %w", i, err)
		}
	}
	return nil
}

func fillDelivery(p *store.Push, d *store.Delivery) {
	d.PushID = p.ID
	if d.SDKAppID == 0 {
		d.SDKAppID = p.SDKAppID
	}
	if d.UserID == "" {
		d.UserID = p.UserID
	}
	if d.State == "" {
		d.State = store.DeliveryPending
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = p.CreatedAt
	}
}

const selectDeliveries = `SELECT ` + DeliveryColumns + ` FROM deliveries WHERE push_id = $1 ORDER BY id`

func (db *DB) Deliveries(ctx context.Context, pushID string) ([]store.Delivery, error) {
	rows, err := db.r.QueryContext(ctx, selectDeliveries, pushID)
	if err != nil {
		return nil, db.fail("deliveries", err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, db.fail("deliveries", err)
}
