package sqlstore

import (
	"context"
	"database/sql"
	"slices"

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

const (
	insertSessions       = `INSERT INTO sessions (` + sessionColumns + `) VALUES `
	insertSessionsUpdate = ` ON CONFLICT (sdk_app_id, user_id, device_id) DO UPDATE SET
	connected_at = excluded.connected_at,
	disconnected_at = excluded.disconnected_at`
	sessionRowsPerInsert = 100
)

// PutSessions upserts ss with multi-row INSERTs in one transaction. A
// device twice in ss is written once, as its last entry: an upsert may
// not touch one row twice in a statement (PostgreSQL refuses).
func (db *DB) PutSessions(ctx context.Context, ss []*store.Session) error {
	type key struct {
		app          int64
		user, device string
	}
	last := make(map[key]int, len(ss))
	at := now()
	for i, s := range ss {
		if s.ConnectedAt.IsZero() {
			s.ConnectedAt = at
		}
		last[key{s.SDKAppID, s.UserID, s.DeviceID}] = i
	}
	rows := make([]*store.Session, 0, len(last))
	for i, s := range ss {
		if last[key{s.SDKAppID, s.UserID, s.DeviceID}] == i {
			rows = append(rows, s)
		}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(rows, sessionRowsPerInsert) {
			args := make([]any, 0, 5*len(chunk))
			for _, s := range chunk {
				args = append(args, s.SDKAppID, s.UserID, s.DeviceID, ms(s.ConnectedAt), ms(s.DisconnectedAt))
			}
			if _, err := tx.ExecContext(ctx, insertSessions+db.valueRows(len(chunk), 5)+insertSessionsUpdate, args...); err != nil {
				return err
			}
		}
		return nil
	})
	return db.fail("put sessions", err)
}

const selectSession = `SELECT ` + sessionColumns + ` FROM sessions
WHERE sdk_app_id = $1 AND user_id = $2 AND device_id = $3`

func (db *DB) Session(ctx context.Context, sdkAppID int64, userID, deviceID string) (*store.Session, error) {
	stmt, err := db.preparedRead(ctx, selectSession)
	if err != nil {
		return nil, db.fail("session", err)
	}
	s, err := scanSession(stmt.QueryRowContext(ctx, sdkAppID, userID, deviceID))
	if err != nil {
		return nil, db.fail("session", err)
	}
	return &s, nil
}
