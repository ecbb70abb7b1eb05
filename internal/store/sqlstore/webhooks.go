package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// WebhookColumns is what the dialects' claim queries return, in the
// order scanWebhook reads.
const WebhookColumns = `id, sdk_app_id, event_id, event_type, body, state, attempts,
	next_attempt_at, lease_until, last_error, created_at, updated_at`

func scanWebhook(row scanner) (store.Webhook, error) {
	var (
		w                             store.Webhook
		next, lease, created, updated int64
	)
	err := row.Scan(&w.ID, &w.SDKAppID, &w.EventID, &w.EventType, &w.Body, &w.State, &w.Attempts,
		&next, &lease, &w.LastError, &created, &updated)
	w.NextAttemptAt, w.LeaseUntil = fromMS(next), fromMS(lease)
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return w, err
}

const insertWebhook = `INSERT INTO webhooks (sdk_app_id, event_id, event_type, body, state, attempts,
	next_attempt_at, lease_until, last_error, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id`

// EnqueueWebhook adds w to the webhook outbox and sets w.ID. An empty
// State becomes pending, a zero CreatedAt now and a zero UpdatedAt
// CreatedAt; a zero NextAttemptAt is due at once. A taken EventID fails
// with store.ErrConflict, an unknown app with store.ErrNotFound.
func (db *DB) EnqueueWebhook(ctx context.Context, w *store.Webhook) error {
	if w.State == "" {
		w.State = store.WebhookPending
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now()
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = w.CreatedAt
	}
	err := db.w.QueryRowContext(ctx, insertWebhook, w.SDKAppID, w.EventID, w.EventType, w.Body,
		w.State, w.Attempts, ms(w.NextAttemptAt), ms(w.LeaseUntil), w.LastError,
		ms(w.CreatedAt), ms(w.UpdatedAt)).Scan(&w.ID)
	return db.fail("enqueue webhook", err)
}

// ClaimWebhooks leases up to limit due pending webhooks until
// leaseUntil, oldest NextAttemptAt first, locking as ClaimDeliveries
// does so that concurrent senders never share one.
func (db *DB) ClaimWebhooks(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.Webhook, error) {
	if limit <= 0 {
		return []store.Webhook{}, nil
	}
	var ws []store.Webhook
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.d.ClaimWebhooks, ms(leaseUntil), ms(now), limit)
		if err != nil {
			return err
		}
		ws, err = collect(rows, scanWebhook)
		return err
	})
	if err != nil {
		return nil, db.fail("claim webhooks", err)
	}
	slices.SortFunc(ws, func(a, b store.Webhook) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ws, nil
}

const finishWebhook = `UPDATE webhooks SET state = $2, attempts = $3, next_attempt_at = $4,
	last_error = $5, updated_at = $6, lease_until = 0
WHERE id = $1`

// FinishWebhook stores w's state, attempts, next attempt and last error
// and clears its lease; a zero UpdatedAt becomes now.
func (db *DB) FinishWebhook(ctx context.Context, w *store.Webhook) error {
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = now()
	}
	err := mustAffect(db.w.ExecContext(ctx, finishWebhook, w.ID, w.State, w.Attempts,
		ms(w.NextAttemptAt), w.LastError, ms(w.UpdatedAt)))
	if err != nil {
		return db.fail("finish webhook", err)
	}
	w.LeaseUntil = time.Time{}
	return nil
}

// Limits of Webhooks.
const (
	DefaultWebhooksLimit = 100
	MaxWebhooksLimit     = 1000
)

const selectWebhooks = `SELECT ` + WebhookColumns + ` FROM webhooks
WHERE sdk_app_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`

// Webhooks lists an app's webhooks, newest first. A limit <= 0 means
// DefaultWebhooksLimit, and it is capped at MaxWebhooksLimit: the outbox
// keeps every event, so an unbounded list could be huge.
func (db *DB) Webhooks(ctx context.Context, sdkAppID int64, limit int) ([]store.Webhook, error) {
	if limit <= 0 {
		limit = DefaultWebhooksLimit
	}
	rows, err := db.r.QueryContext(ctx, selectWebhooks, sdkAppID, min(limit, MaxWebhooksLimit))
	if err != nil {
		return nil, db.fail("webhooks", err)
	}
	ws, err := collect(rows, scanWebhook)
	return ws, db.fail("webhooks", err)
}
