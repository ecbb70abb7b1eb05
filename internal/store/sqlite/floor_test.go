package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// BenchmarkPushRowsFloor measures what SQLite itself costs for the rows of
// a push, with none of ringd's store code: the same schema, connection
// settings and background checkpoints, and for each batch of 1000 pushes
// to 1000 users the statements a push needs at the least, prepared once,
// with only the columns they must carry:
//
//   - intake: read the users' registrations, insert the pushes and their
//     deliveries, commit;
//   - claim: lease the batch's deliveries;
//   - finish: in groups of 256 (the workers' group commit), mark the
//     deliveries delivered, insert their attempts and each registration's
//     last success, one commit per group.
//
// Compared with BenchmarkSubmitBatch and BenchmarkClaimAndFinish (package
// push), which run the same work through ringd's store, it splits a push's
// store cost into the engine's part and ringd's (docs/performance.md).
func BenchmarkPushRowsFloor(b *testing.B) {
	const users, group = 1000, 256
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "ringd.db")
	st, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	seedRegistrations(b, st, users)
	w, err := sql.Open("sqlite", path+"?"+writerParams)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	f := newFloor(b, w, users, group)
	var intake, claim, finish time.Duration
	for b.Loop() {
		t0 := time.Now()
		f.intake(b)
		t1 := time.Now()
		ids := f.claim(b)
		t2 := time.Now()
		f.finish(b, ids)
		intake, claim, finish = intake+t1.Sub(t0), claim+t2.Sub(t1), finish+time.Since(t2)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / users }
	b.ReportMetric(per(intake), "intake-ns/push")
	b.ReportMetric(per(claim), "claim-ns/push")
	b.ReportMetric(per(finish), "finish-ns/push")
	b.ReportMetric(per(intake+claim+finish), "ns/push")
}

func seedRegistrations(b *testing.B, st *Store, users int) {
	ctx := context.Background()
	now := time.Now()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: floorApp, Name: "floor", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	for i := range users {
		r := &store.Registration{SDKAppID: floorApp, UserID: fmt.Sprint("user-", i), Token: fmt.Sprintf("%064x", i+1),
			CertificateID: 10001, Environment: store.EnvProduction, Kind: store.KindAlert, RegisteredAt: now}
		if _, err := st.PutRegistration(ctx, r, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// floor holds the prepared statements and reused argument slices of
// BenchmarkPushRowsFloor.
type floor struct {
	w                               *sql.DB
	users                           []any
	regs, pushes, deliveries        *sql.Stmt
	claimStmt                       *sql.Stmt
	finishStmt, attempts, marks     *sql.Stmt
	seq                             int // of push IDs
	group                           int
	intakeArgs, deliveryArgs        []any
	finishArgs, attemptArgs, markAs []any
}

const floorApp = 1400000001

func newFloor(b *testing.B, w *sql.DB, users, group int) *floor {
	f := &floor{w: w, group: group}
	for i := range users {
		f.users = append(f.users, fmt.Sprint("user-", i))
	}
	rows := func(n, cols int) string {
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
		return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
	}
	prep := func(q string) *sql.Stmt {
		s, err := w.Prepare(q)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	f.regs = prep(`SELECT user_id, token, certificate_id, environment, kind, device_id FROM registrations
WHERE sdk_app_id = ? AND user_id IN (` + strings.TrimSuffix(strings.Repeat("?,", users), ",") + `)`)
	f.pushes = prep(`INSERT INTO pushes (id, sdk_app_id, user_id, request, created_at, expires_at) VALUES ` + rows(users, 6))
	f.deliveries = prep(`INSERT INTO deliveries (push_id, sdk_app_id, user_id, token, certificate_id,
	environment, kind, device_id, apns_id, state, next_attempt_at, updated_at) VALUES ` + rows(users/2, 12))
	f.claimStmt = prep(`UPDATE deliveries SET lease_until = ? WHERE id IN (
	SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
	ORDER BY next_attempt_at, id LIMIT ?) RETURNING id, push_id, token`)
	f.finishStmt = prep(`UPDATE deliveries SET state = 'delivered', attempts = 1, lease_until = 0, updated_at = v.column2
FROM (VALUES ` + rows(group, 2) + `) AS v WHERE deliveries.id = v.column1`)
	f.attempts = prep(`INSERT INTO attempts (delivery_id, push_id, at, environment, host, certificate_id, apns_id,
	status, latency_ns, classification, diagnosis) VALUES ` + rows(group, 11))
	f.marks = prep(`UPDATE registrations SET last_success_at = v.column2
FROM (VALUES ` + rows(group, 2) + `) AS v WHERE registrations.sdk_app_id = ` + fmt.Sprint(floorApp) + ` AND registrations.token = v.column1`)
	return f
}

func (f *floor) intake(b *testing.B) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	tx, err := f.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	type reg struct {
		user, token, env, kind, device string
		cert                           int64
	}
	rows, err := tx.Stmt(f.regs).Query(append([]any{floorApp}, f.users...)...)
	if err != nil {
		b.Fatal(err)
	}
	var regs []reg
	for rows.Next() {
		var r reg
		if err := rows.Scan(&r.user, &r.token, &r.cert, &r.env, &r.kind, &r.device); err != nil {
			b.Fatal(err)
		}
		regs = append(regs, r)
	}
	if err := rows.Err(); err != nil || len(regs) != len(f.users) {
		b.Fatalf("%d registrations, %v", len(regs), err)
	}
	f.intakeArgs = f.intakeArgs[:0]
	f.deliveryArgs = f.deliveryArgs[:0]
	ids := make([]string, len(regs))
	for i, r := range regs {
		f.seq++
		ids[i] = fmt.Sprintf("%016x-%08x", now, f.seq) // time-ordered, as UUIDv7 push IDs
		f.intakeArgs = append(f.intakeArgs, ids[i], floorApp, r.user, []byte(`{"body":"bench"}`), now, now+30_000)
	}
	if _, err := tx.Stmt(f.pushes).Exec(f.intakeArgs...); err != nil {
		b.Fatal(err)
	}
	half := len(regs) / 2 // the deliveries' statement takes half a batch
	for start := 0; start < len(regs); start += half {
		f.deliveryArgs = f.deliveryArgs[:0]
		for i := start; i < start+half; i++ {
			r := regs[i]
			f.deliveryArgs = append(f.deliveryArgs, ids[i], floorApp, r.user, r.token, r.cert, r.env, r.kind, r.device, ids[i], "pending", now, now)
		}
		if _, err := tx.Stmt(f.deliveries).Exec(f.deliveryArgs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

type claimed struct {
	id          int64
	push, token string
}

func (f *floor) claim(b *testing.B) []claimed {
	now := time.Now().UnixMilli()
	tx, err := f.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.Stmt(f.claimStmt).Query(now+60_000, now, now, len(f.users))
	if err != nil {
		b.Fatal(err)
	}
	var out []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.id, &c.push, &c.token); err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil || len(out) != len(f.users) {
		b.Fatalf("claimed %d, %v", len(out), err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return out
}

func (f *floor) finish(b *testing.B, cs []claimed) {
	for len(cs) >= f.group {
		f.finishGroup(b, cs[:f.group])
		cs = cs[f.group:]
	}
	// The last partial group is finished as a full one padded with its
	// own first row: the statements stay prepared, and the repeats are
	// no-ops but for their attempt rows, within a quarter of a group.
	if len(cs) > 0 {
		padded := append([]claimed(nil), cs...)
		for len(padded) < f.group {
			padded = append(padded, cs[0])
		}
		f.finishGroup(b, padded)
	}
}

func (f *floor) finishGroup(b *testing.B, cs []claimed) {
	now := time.Now().UnixMilli()
	f.finishArgs, f.attemptArgs, f.markAs = f.finishArgs[:0], f.attemptArgs[:0], f.markAs[:0]
	for _, c := range cs {
		f.finishArgs = append(f.finishArgs, c.id, now)
		f.attemptArgs = append(f.attemptArgs, c.id, c.push, now, "production", "api.push.apple.com", 10001, c.push,
			200, 1_000_000, "delivered", "accepted by APNs (200)")
		f.markAs = append(f.markAs, c.token, now)
	}
	tx, err := f.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for _, s := range []struct {
		stmt *sql.Stmt
		args []any
	}{{f.finishStmt, f.finishArgs}, {f.attempts, f.attemptArgs}, {f.marks, f.markAs}} {
		if _, err := tx.Stmt(s.stmt).Exec(s.args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPushLogFloor is the floor of the other design docs/performance.md
// names for the hot path: a push's records appended to a log file instead
// of rows in SQLite. Per batch of 1000 pushes it encodes each push with its
// delivery (IDs, user, token, certificate, apns-id, times) and appends
// them with one write; per group of 256 outcomes it encodes and appends
// the attempts the same way. There is no claim (leases would live in
// memory) and no fsync per write, as SQLite's WAL with synchronous=NORMAL
// has none. What it leaves out, an index to answer the trace, is why it is
// a floor and not a design.
func BenchmarkPushLogFloor(b *testing.B) {
	const users, group = 1000, 256
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "outbox.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("%064x", i+1)
	}
	var buf []byte
	seq := int64(0)
	for b.Loop() {
		now := time.Now().UnixMilli()
		buf = buf[:0]
		first := seq + 1
		for i := range users {
			seq++
			id := fmt.Sprintf("%016x-%08x", now, seq)
			buf = appendPushRecord(buf, seq, id, fmt.Sprint("user-", i), tokens[i], now)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		for start := first; start <= seq; start += group {
			buf = buf[:0]
			for d := start; d < min(start+group, seq+1); d++ {
				buf = appendOutcomeRecord(buf, d, now)
			}
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/users, "ns/push")
}

func appendPushRecord(buf []byte, seq int64, id, user, token string, now int64) []byte {
	buf = append(buf, 'P')
	buf = binary.AppendVarint(buf, seq)
	for _, s := range []string{id, user, token, "production", "alert", id} { // the apns-id is the push ID here
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendVarint(buf, floorApp)
	buf = binary.AppendVarint(buf, 10001)
	buf = binary.AppendVarint(buf, now)
	return binary.AppendVarint(buf, now+30_000)
}

func appendOutcomeRecord(buf []byte, seq, now int64) []byte {
	buf = append(buf, 'A')
	buf = binary.AppendVarint(buf, seq)
	buf = binary.AppendVarint(buf, now)
	buf = binary.AppendVarint(buf, 200)
	buf = binary.AppendVarint(buf, 1_000_000)
	const host = "api.push.apple.com"
	buf = binary.AppendUvarint(buf, uint64(len(host)))
	return append(buf, host...)
}
