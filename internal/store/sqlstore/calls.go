package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/store"
)

const callColumns = `id, sdk_app_id, caller, group_id, media, room_id, data, state, end_reason,
	created_at, answered_at, ended_at, seq, push_ids, doc, updated_at`

func scanCall(row scanner) (store.Call, error) {
	var (
		c                                 store.Call
		pushIDs                           string
		created, answered, ended, updated int64
	)
	err := row.Scan(&c.ID, &c.SDKAppID, &c.Caller, &c.GroupID, &c.Media, &c.RoomID, &c.Data, &c.State,
		&c.EndReason, &created, &answered, &ended, &c.Seq, &pushIDs, &c.Doc, &updated)
	if err != nil {
		return c, err
	}
	c.CreatedAt, c.AnsweredAt, c.EndedAt, c.UpdatedAt = fromMS(created), fromMS(answered), fromMS(ended), fromMS(updated)
	c.PushIDs, err = parseList("push IDs", pushIDs)
	return c, err
}

// The upsert replaces the call only within its own app and only with a
// version at least as new (by Seq, which grows with every event): a
// late write of an older version must not bring an ended call back to
// ringing. Otherwise it changes nothing and PutCall fails.
const upsertCall = `INSERT INTO calls (` + callColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO UPDATE SET
	caller = excluded.caller,
	group_id = excluded.group_id,
	media = excluded.media,
	room_id = excluded.room_id,
	data = excluded.data,
	state = excluded.state,
	end_reason = excluded.end_reason,
	created_at = excluded.created_at,
	answered_at = excluded.answered_at,
	ended_at = excluded.ended_at,
	seq = excluded.seq,
	push_ids = excluded.push_ids,
	doc = excluded.doc,
	updated_at = excluded.updated_at
WHERE calls.sdk_app_id = excluded.sdk_app_id AND calls.seq <= excluded.seq`

const deleteParticipants = `DELETE FROM call_participants WHERE call_id = $1`

// Participants repeat their call's app and times so that the queries by
// user read one index; PutCall rewrites them with the call, so they
// cannot drift. pos keeps the order the call service gave.
const (
	participantColumns = `call_id, user_id, sdk_app_id, pos, role, outcome, ring_deadline, created_at, ended_at`
	participantArgs    = 9
	insertParticipants = `INSERT INTO call_participants (` + participantColumns + `) VALUES `
)

// PutCall upserts the call and replaces its participants in one
// transaction of three statements (the participants go in one multi-row
// insert); a zero CreatedAt or UpdatedAt becomes now. It fails, changing
// nothing, with store.ErrConflict when the ID is another app's call, when
// the stored call has a higher Seq or when two participants share a user
// ID, and with store.ErrNotFound when the app does not exist.
func (db *DB) PutCall(ctx context.Context, c *store.Call) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now()
	}
	pushIDs, err := listJSON("push IDs", c.PushIDs)
	if err != nil {
		return db.fail("put call", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, upsertCall,
			c.ID, c.SDKAppID, c.Caller, c.GroupID, c.Media, c.RoomID, c.Data, c.State, c.EndReason,
			ms(c.CreatedAt), ms(c.AnsweredAt), ms(c.EndedAt), c.Seq, pushIDs, c.Doc, ms(c.UpdatedAt))
		if err := mustAffect(res, err); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return store.ErrConflict // the WHERE of the upsert refused
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, deleteParticipants, c.ID); err != nil {
			return err
		}
		return insertCallParticipants(ctx, tx, c)
	})
	return db.fail("put call", err)
}

func insertCallParticipants(ctx context.Context, tx *sql.Tx, c *store.Call) error {
	perStmt := maxInList / participantArgs
	for start := 0; start < len(c.Participants); start += perStmt {
		ps := c.Participants[start:min(start+perStmt, len(c.Participants))]
		var q strings.Builder
		q.WriteString(insertParticipants)
		args := make([]any, 0, len(ps)*participantArgs)
		for i, p := range ps {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(len(args)+1, participantArgs) + ")")
			args = append(args, c.ID, p.UserID, c.SDKAppID, start+i, p.Role, p.Outcome,
				ms(p.RingDeadline), ms(c.CreatedAt), ms(c.EndedAt))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// selectParticipantsOf is followed by the IN list of call IDs.
const selectParticipantsOf = `SELECT call_id, user_id, role, outcome, ring_deadline
FROM call_participants WHERE call_id IN (`

// loadParticipants fills the participants of calls, in the transaction
// that read them so the two agree. A call without participants keeps nil.
func loadParticipants(ctx context.Context, tx *sql.Tx, calls []store.Call) error {
	index := make(map[string]int, len(calls))
	ids := make([]string, len(calls))
	for i, c := range calls {
		index[c.ID], ids[i] = i, c.ID
	}
	for chunk := range slices.Chunk(ids, maxInList) {
		q := selectParticipantsOf + placeholders(1, len(chunk)) + `) ORDER BY call_id, pos`
		rows, err := tx.QueryContext(ctx, q, anys(chunk)...)
		if err != nil {
			return err
		}
		err = eachRow(rows, func(row scanner) error {
			var (
				id       string
				p        store.CallParticipant
				deadline int64
			)
			if err := row.Scan(&id, &p.UserID, &p.Role, &p.Outcome, &deadline); err != nil {
				return err
			}
			p.RingDeadline = fromMS(deadline)
			c := &calls[index[id]]
			c.Participants = append(c.Participants, p)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// queryCalls reads calls and their participants in one snapshot.
func (db *DB) queryCalls(ctx context.Context, op, query string, args ...any) ([]store.Call, error) {
	var calls []store.Call
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if calls, err = collect(rows, scanCall); err != nil {
			return err
		}
		return loadParticipants(ctx, tx, calls)
	})
	if err != nil {
		return nil, db.fail(op, err)
	}
	return calls, nil
}

const selectCall = `SELECT ` + callColumns + ` FROM calls WHERE id = $1 AND sdk_app_id = $2`

func (db *DB) Call(ctx context.Context, sdkAppID int64, id string) (*store.Call, error) {
	calls, err := db.queryCalls(ctx, "call", selectCall, id, sdkAppID)
	if err != nil {
		return nil, err
	}
	if len(calls) == 0 {
		return nil, db.fail("call", sql.ErrNoRows)
	}
	return &calls[0], nil
}

// Limits of Calls.
const (
	DefaultCallsLimit = 100
	MaxCallsLimit     = 1000
)

// The user's calls are those they placed (calls_caller) and those they
// are a participant of (call_participants_user). Each branch takes its
// own newest $4 first, so neither reads the user's whole history, and
// the union holds the newest $4 overall since both branches order as the
// outer query does.
const (
	selectCalls = `SELECT ` + callColumns + ` FROM calls
WHERE sdk_app_id = $1 AND created_at >= $2 AND created_at < $3
ORDER BY created_at DESC, id DESC LIMIT $4`
	selectUserCalls = `SELECT ` + callColumns + ` FROM calls
WHERE id IN (
	SELECT call_id FROM (
		SELECT call_id FROM call_participants
		WHERE sdk_app_id = $1 AND user_id = $5 AND created_at >= $2 AND created_at < $3
		ORDER BY created_at DESC, call_id DESC LIMIT $4) AS participated
	UNION ALL
	SELECT id FROM (
		SELECT id FROM calls
		WHERE sdk_app_id = $1 AND caller = $5 AND created_at >= $2 AND created_at < $3
		ORDER BY created_at DESC, id DESC LIMIT $4) AS placed)
ORDER BY created_at DESC, id DESC LIMIT $4`
)

// Calls lists an app's calls matching f, newest first. A Limit <= 0
// means DefaultCallsLimit, and it is capped at MaxCallsLimit.
func (db *DB) Calls(ctx context.Context, sdkAppID int64, f store.CallFilter) ([]store.Call, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultCallsLimit
	}
	limit = min(limit, MaxCallsLimit)
	until := int64(math.MaxInt64)
	if !f.Until.IsZero() {
		until = ms(f.Until)
	}
	since := ms(f.Since)
	if f.UserID == "" {
		return db.queryCalls(ctx, "calls", selectCalls, sdkAppID, since, until, limit)
	}
	return db.queryCalls(ctx, "calls", selectUserCalls, sdkAppID, since, until, limit, f.UserID)
}

// calls_active indexes only the calls not ended, so a restart does not
// read the call history.
const selectActiveCalls = `SELECT ` + callColumns + ` FROM calls
WHERE state <> 'ended' ORDER BY created_at, id`

// ActiveCalls returns every call not ended, of every app, oldest first.
func (db *DB) ActiveCalls(ctx context.Context) ([]store.Call, error) {
	return db.queryCalls(ctx, "active calls", selectActiveCalls)
}

// Two index ranges rather than one OR, which neither engine can answer
// from one index: calls created since, and calls ended since (a partial
// index of ended participations).
const selectCallsOfInvitee = `SELECT ` + callColumns + ` FROM calls
WHERE id IN (
	SELECT call_id FROM call_participants
	WHERE sdk_app_id = $1 AND user_id = $2 AND role = 'invitee' AND created_at >= $3
	UNION ALL
	SELECT call_id FROM call_participants
	WHERE sdk_app_id = $1 AND user_id = $2 AND role = 'invitee' AND ended_at > 0 AND ended_at >= $3)
ORDER BY created_at, id`

// CallsOfInvitee returns the calls the user was invited to (role
// "invitee") that were created or ended at or after since, oldest first.
// A call created before since and still going is not among them.
func (db *DB) CallsOfInvitee(ctx context.Context, sdkAppID int64, userID string, since time.Time) ([]store.Call, error) {
	return db.queryCalls(ctx, "calls of invitee", selectCallsOfInvitee, sdkAppID, userID, ms(since))
}
