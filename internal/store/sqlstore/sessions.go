package sqlstore

import (
	"context"

	"github.com/ringd/ringd/internal/store"
)

const sessionColumns = `sdk_app_id, user_id, device_id, connected_at, disconnected_at`

func scanSession(row scanner) (store.Session, error) {
	var (
		s                       store.Session
		connected, disconnected int64
	)
	err := row.Scan(&s.SDKAppID, &s.UserID, &s.DeviceID, &connected, &disconnected)
	s.ConnectedAt, s.DisconnectedAt = fromMS(connected), fromMS(disconnected)
	return s, err
}

const upsertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (sdk_app_id, user_id, device_id) DO UPDATE SET
	connected_at = excluded.connected_at,
	disconnected_at = excluded.disconnected_at`

// PutSession upserts s by (app, user, device); a zero ConnectedAt
// becomes now. An unknown app fails with store.ErrNotFound.
func (db *DB) PutSession(ctx context.Context, s *store.Session) error {
	if s.ConnectedAt.IsZero() {
		s.ConnectedAt = now()
	}
	_, err := db.w.ExecContext(ctx, upsertSession,
		s.SDKAppID, s.UserID, s.DeviceID, ms(s.ConnectedAt), ms(s.DisconnectedAt))
	return db.fail("put session", err)
}

const selectSession = `SELECT ` + sessionColumns + ` FROM sessions
WHERE sdk_app_id = $1 AND user_id = $2 AND device_id = $3`

func (db *DB) Session(ctx context.Context, sdkAppID int64, userID, deviceID string) (*store.Session, error) {
	s, err := scanSession(db.r.QueryRowContext(ctx, selectSession, sdkAppID, userID, deviceID))
	if err != nil {
		return nil, db.fail("session", err)
	}
	return &s, nil
}
