package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
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
// ringing. Otherwise it changes nothing and PutCall fails. Its caller and
// creation time are what identify a call: another call under the same ID
// is refused too. They are left out of the SET list, so the indexes on
// them (calls_app, calls_caller) are not rewritten for every change.
const upsertCall = `INSERT INTO calls (` + callColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO UPDATE SET
	group_id = excluded.group_id,
	media = excluded.media,
	room_id = excluded.room_id,
	data = excluded.data,
	state = excluded.state,
	end_reason = excluded.end_reason,
	answered_at = excluded.answered_at,
	ended_at = excluded.ended_at,
	seq = excluded.seq,
	push_ids = excluded.push_ids,
	doc = excluded.doc,
	updated_at = excluded.updated_at
WHERE calls.sdk_app_id = excluded.sdk_app_id AND calls.seq <= excluded.seq
	AND calls.caller = excluded.caller AND calls.created_at = excluded.created_at`

// deleteParticipants, followed by the call ID's placeholder, removes all
// of a call's participants; with " AND user_id NOT IN (…)" after it, the
// participants not among the users who stay.
const deleteParticipants = `DELETE FROM call_participants WHERE call_id = `

// Participants repeat their call's app and times so that the queries by
// user read one index; PutCall rewrites them with the call, so they
// cannot drift. pos keeps the order the call service gave.
//
// A participant already stored is updated in place rather than deleted
// and inserted again: its user, app and creation time (which its
// indexes hold) do not change with the call, so only its row is written.
const (
	participantColumns  = `call_id, user_id, sdk_app_id, pos, role, outcome, ring_deadline, created_at, ended_at`
	participantArgs     = 9
	upsertParticipants  = `INSERT INTO call_participants (` + participantColumns + `) VALUES `
	participantConflict = ` ON CONFLICT (call_id, user_id) DO UPDATE SET
	pos = excluded.pos,
	role = excluded.role,
	outcome = excluded.outcome,
	ring_deadline = excluded.ring_deadline,
	ended_at = excluded.ended_at`
)

// PutCall upserts the call and replaces its participants in one
// transaction of three prepared statements (the participants go in one
// multi-row upsert, those dropped in one delete); a zero CreatedAt or
// UpdatedAt becomes now. It fails, changing
// nothing, with store.ErrConflict when the ID is another app's call or
// another call (another caller or creation time), when the stored call
// has a higher Seq or when two participants share a user ID, and with
// store.ErrNotFound when the app does not exist.
func (db *DB) PutCall(ctx context.Context, c *store.Call) error {
	return db.fail("put call", db.putCalls(ctx, []*store.Call{c}))
}

// PutCalls writes every call as PutCall does, in one transaction: all of
// them, or none when one fails (the error is that call's, as PutCall
// would report it, naming its ID). The call service writes the changes
// of concurrent calls this way, so they share one commit.
func (db *DB) PutCalls(ctx context.Context, calls []*store.Call) error {
	return db.fail("put calls", db.putCalls(ctx, calls))
}

// callStmts are the prepared statements of one putCalls.
type callStmts struct {
	upsert      *sql.Stmt
	deleteParts map[int]*sql.Stmt // by participants kept
	upsertParts map[int]*sql.Stmt // by rows per statement
}

// prepareCallStmts prepares (or finds in the cache) every statement the
// calls need, before the transaction begins: on SQLite the transaction
// holds the writer's only connection. The participant inserts are cached
// by row count, which is at most participantRowsPerInsert, and the
// deletes by the number of participants kept, at most maxKeptInDelete.
func (db *DB) prepareCallStmts(ctx context.Context, calls []*store.Call) (*callStmts, error) {
	st := &callStmts{deleteParts: map[int]*sql.Stmt{}, upsertParts: map[int]*sql.Stmt{}}
	var err error
	if st.upsert, err = db.prepared(ctx, upsertCall); err != nil {
		return nil, err
	}
	for _, c := range calls {
		if kept := keptInDelete(c); st.deleteParts[kept] == nil {
			q := deleteParticipants + db.params(1, 1)
			if kept > 0 {
				q += " AND user_id NOT IN (" + db.params(2, kept) + ")"
			}
			if st.deleteParts[kept], err = db.prepared(ctx, q); err != nil {
				return nil, err
			}
		}
		for chunk := range slices.Chunk(c.Participants, participantRowsPerInsert) {
			n := len(chunk)
			if st.upsertParts[n] != nil {
				continue
			}
			q := upsertParticipants + db.valueRows(n, participantArgs) + participantConflict
			if st.upsertParts[n], err = db.prepared(ctx, q); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

// participantRowsPerInsert keeps one insert's arguments within maxInList.
const participantRowsPerInsert = maxInList / participantArgs

// maxKeptInDelete bounds the IN list of the participants' delete; a call
// with more participants has them all deleted and inserted again.
const maxKeptInDelete = maxInList - 1

// keptInDelete is the number of users in the IN list of c's delete: its
// participants, or 0 to delete them all.
func keptInDelete(c *store.Call) int {
	if len(c.Participants) > maxKeptInDelete {
		return 0
	}
	return len(c.Participants)
}

func (db *DB) putCalls(ctx context.Context, calls []*store.Call) error {
	write, err := db.callsWrite(ctx, calls)
	if err != nil || write == nil {
		return err
	}
	return db.inTx(ctx, write)
}

// PutCallsWithPushes writes calls as PutCalls does and pushes as
// CreatePushes does, all in one transaction: a call change and the pushes
// it sends are durable together or not at all.
func (db *DB) PutCallsWithPushes(ctx context.Context, calls []*store.Call, ps []store.PushWithDeliveries) error {
	writeCalls, err := db.callsWrite(ctx, calls)
	if err != nil {
		return db.fail("put calls with pushes", err)
	}
	writePushes, rolledBack, err := db.pushesWrite(ctx, ps)
	if err != nil {
		return db.fail("put calls with pushes", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if writePushes != nil {
			if err := writePushes(tx); err != nil {
				return err
			}
		}
		if writeCalls != nil {
			return writeCalls(tx)
		}
		return nil
	})
	if err != nil && rolledBack != nil {
		rolledBack()
	}
	return db.fail("put calls with pushes", err)
}

// callsWrite checks and readies calls for writing and returns the work of
// the transaction, nil when there is nothing to write.
func (db *DB) callsWrite(ctx context.Context, calls []*store.Call) (func(*sql.Tx) error, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	type encoded struct {
		c       *store.Call
		pushIDs string
	}
	enc := make([]encoded, len(calls))
	seen := make(map[string]bool, len(calls))
	for i, c := range calls {
		if seen[c.ID] {
			// Two versions of one call in one transaction: which one wins
			// would depend on their order, not their Seq.
			return nil, fmt.Errorf("call %s twice in one batch: %w", c.ID, store.ErrConflict)
		}
		seen[c.ID] = true
		if c.CreatedAt.IsZero() {
			c.CreatedAt = now()
		}
		if c.UpdatedAt.IsZero() {
			c.UpdatedAt = now()
		}
		pushIDs, err := listJSON("push IDs", c.PushIDs)
		if err != nil {
			return nil, fmt.Errorf("call %s: %w", c.ID, err)
		}
		if err := distinctParticipants(c); err != nil {
			return nil, err
		}
		enc[i] = encoded{c, pushIDs}
	}
	st, err := db.prepareCallStmts(ctx, calls)
	if err != nil {
		return nil, err
	}
	return func(tx *sql.Tx) error {
		txst := &callStmts{upsert: tx.StmtContext(ctx, st.upsert),
			deleteParts: make(map[int]*sql.Stmt, len(st.deleteParts)), upsertParts: make(map[int]*sql.Stmt, len(st.upsertParts))}
		for n, s := range st.deleteParts {
			txst.deleteParts[n] = tx.StmtContext(ctx, s)
		}
		for n, s := range st.upsertParts {
			txst.upsertParts[n] = tx.StmtContext(ctx, s)
		}
		for _, e := range enc {
			if err := putCall(ctx, txst, e.c, e.pushIDs); err != nil {
				if len(calls) > 1 {
					return fmt.Errorf("call %s: %w", e.c.ID, err)
				}
				return err
			}
		}
		return nil
	}, nil
}

// distinctParticipants refuses a user listed twice, which the upsert of
// the participants would otherwise merge into one row.
func distinctParticipants(c *store.Call) error {
	users := make(map[string]bool, len(c.Participants))
	for _, p := range c.Participants {
		if users[p.UserID] {
			return fmt.Errorf("call %s: participant %q twice: %w", c.ID, p.UserID, store.ErrConflict)
		}
		users[p.UserID] = true
	}
	return nil
}

// putCall writes one call with the transaction's statements.
func putCall(ctx context.Context, st *callStmts, c *store.Call, pushIDs string) error {
	res, err := st.upsert.ExecContext(ctx,
		c.ID, c.SDKAppID, c.Caller, c.GroupID, c.Media, c.RoomID, c.Data, c.State, c.EndReason,
		ms(c.CreatedAt), ms(c.AnsweredAt), ms(c.EndedAt), c.Seq, pushIDs, c.Doc, ms(c.UpdatedAt))
	if err := mustAffect(res, err); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.ErrConflict // the WHERE of the upsert refused
		}
		return err
	}
	kept := keptInDelete(c)
	args := make([]any, 0, 1+kept)
	args = append(args, c.ID)
	for _, p := range c.Participants[:kept] {
		args = append(args, p.UserID)
	}
	if _, err := st.deleteParts[kept].ExecContext(ctx, args...); err != nil {
		return err
	}
	start := 0
	for chunk := range slices.Chunk(c.Participants, participantRowsPerInsert) {
		args := make([]any, 0, len(chunk)*participantArgs)
		for i, p := range chunk {
			args = append(args, c.ID, p.UserID, c.SDKAppID, start+i, p.Role, p.Outcome,
				ms(p.RingDeadline), ms(c.CreatedAt), ms(c.EndedAt))
		}
		if _, err := st.upsertParts[len(chunk)].ExecContext(ctx, args...); err != nil {
			return err
		}
		start += len(chunk)
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
	// Prepared once: every connect runs CallsOfInvitee, and parsing it
	// again cost more than running it (a reconnect storm's profile).
	stmt, err := db.preparedRead(ctx, query)
	if err != nil {
		return nil, db.fail(op, err)
	}
	var calls []store.Call
	err = db.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
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
