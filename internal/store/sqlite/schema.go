package sqlite

import "github.com/ringd/ringd/internal/store/sqlstore"

// migrations is append-only: never edit a released entry, add a new one.
// Version N of the schema is the first N entries. Keep it in step with
// the postgres package's list.
var migrations = []sqlstore.Migration{
	sqlstore.SQL(schemaV1),
	sqlstore.SQL(schemaV2),
	sqlstore.SQL(schemaV3),
}

// Times are INTEGER unix milliseconds, 0 for none. STRICT tables make
// SQLite check column types as PostgreSQL does.
const schemaV1 = `
CREATE TABLE apps (
	sdk_app_id    INTEGER PRIMARY KEY,
	name          TEXT NOT NULL DEFAULT '',
	secret_sealed BLOB,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE certificates (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	sdk_app_id      INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	type            TEXT NOT NULL,
	environment     TEXT NOT NULL,
	bundle_id       TEXT NOT NULL DEFAULT '',
	topics          TEXT NOT NULL DEFAULT '[]',
	voip            INTEGER NOT NULL DEFAULT 0,
	expires_at      INTEGER NOT NULL DEFAULT 0,
	key_id          TEXT NOT NULL DEFAULT '',
	team_id         TEXT NOT NULL DEFAULT '',
	secret_sealed   BLOB,
	created_at      INTEGER NOT NULL,
	last_success_at INTEGER NOT NULL DEFAULT 0,
	last_error_at   INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX certificates_app ON certificates (sdk_app_id, id);
-- Certificate IDs are the businessIDs developers paste into their apps;
-- like Tencent's console they start at 10001. AUTOINCREMENT never reuses
-- an ID, so a deleted certificate's ID cannot point at a new one.
INSERT INTO sqlite_sequence (name, seq) VALUES ('certificates', 10000);

CREATE TABLE registrations (
	sdk_app_id          INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	token               TEXT NOT NULL,
	user_id             TEXT NOT NULL,
	certificate_id      INTEGER NOT NULL,
	environment         TEXT NOT NULL,
	kind                TEXT NOT NULL,
	device_id           TEXT NOT NULL DEFAULT '',
	registered_at       INTEGER NOT NULL,
	last_success_at     INTEGER NOT NULL DEFAULT 0,
	last_failure_at     INTEGER NOT NULL DEFAULT 0,
	last_failure_reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (sdk_app_id, token)
) STRICT;
CREATE INDEX registrations_user ON registrations (sdk_app_id, user_id, registered_at);
CREATE INDEX registrations_certificate ON registrations (certificate_id);

CREATE TABLE pushes (
	id         TEXT PRIMARY KEY,
	sdk_app_id INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL,
	request    BLOB,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX pushes_app ON pushes (sdk_app_id, created_at);
CREATE INDEX pushes_user ON pushes (sdk_app_id, user_id, created_at);

CREATE TABLE deliveries (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	push_id         TEXT NOT NULL REFERENCES pushes (id) ON DELETE CASCADE,
	sdk_app_id      INTEGER NOT NULL,
	user_id         TEXT NOT NULL,
	token           TEXT NOT NULL,
	certificate_id  INTEGER NOT NULL,
	environment     TEXT NOT NULL,
	kind            TEXT NOT NULL,
	device_id       TEXT NOT NULL DEFAULT '',
	apns_id         TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	lease_until     INTEGER NOT NULL DEFAULT 0,
	reason          TEXT NOT NULL DEFAULT '',
	updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_push ON deliveries (push_id, id);
-- The outbox: only pending rows are indexed, so the claim and the depth
-- count do not grow with the delivery history.
CREATE INDEX deliveries_claim ON deliveries (next_attempt_at, id) WHERE state = 'pending';

CREATE TABLE attempts (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id    INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	push_id        TEXT NOT NULL,
	at             INTEGER NOT NULL,
	environment    TEXT NOT NULL DEFAULT '',
	host           TEXT NOT NULL DEFAULT '',
	certificate_id INTEGER NOT NULL DEFAULT 0,
	apns_id        TEXT NOT NULL DEFAULT '',
	apns_unique_id TEXT NOT NULL DEFAULT '',
	status         INTEGER NOT NULL DEFAULT 0,
	reason         TEXT NOT NULL DEFAULT '',
	latency_ns     INTEGER NOT NULL DEFAULT 0,
	classification TEXT NOT NULL DEFAULT '',
	diagnosis      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX attempts_push ON attempts (push_id, id);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
`

// Version 2: calls with their participants, device sessions, app
// settings and the webhook outbox.
//
// call_participants repeats its call's app, created_at and ended_at so
// that the queries by user (Calls, CallsOfInvitee) are index ranges; pos
// keeps the order of Call.Participants. It references calls only: a call
// references its app, so deleting an app removes both.
const schemaV2 = `
ALTER TABLE apps ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

CREATE TABLE calls (
	id          TEXT PRIMARY KEY,
	sdk_app_id  INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	caller      TEXT NOT NULL,
	group_id    TEXT NOT NULL DEFAULT '',
	media       TEXT NOT NULL DEFAULT '',
	room_id     TEXT NOT NULL DEFAULT '',
	data        TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	end_reason  TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	answered_at INTEGER NOT NULL DEFAULT 0,
	ended_at    INTEGER NOT NULL DEFAULT 0,
	seq         INTEGER NOT NULL DEFAULT 0,
	push_ids    TEXT NOT NULL DEFAULT '[]',
	doc         BLOB,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX calls_app ON calls (sdk_app_id, created_at, id);
CREATE INDEX calls_caller ON calls (sdk_app_id, caller, created_at, id);
-- Restarts read the calls not ended; the index leaves out the history.
CREATE INDEX calls_active ON calls (created_at, id) WHERE state <> 'ended';

CREATE TABLE call_participants (
	call_id       TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
	user_id       TEXT NOT NULL,
	sdk_app_id    INTEGER NOT NULL,
	pos           INTEGER NOT NULL,
	role          TEXT NOT NULL,
	outcome       TEXT NOT NULL DEFAULT '',
	ring_deadline INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	ended_at      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (call_id, user_id)
) STRICT;
CREATE INDEX call_participants_user ON call_participants (sdk_app_id, user_id, created_at, call_id);
CREATE INDEX call_participants_ended ON call_participants (sdk_app_id, user_id, ended_at) WHERE ended_at > 0;

CREATE TABLE sessions (
	sdk_app_id      INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL,
	device_id       TEXT NOT NULL,
	connected_at    INTEGER NOT NULL,
	disconnected_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (sdk_app_id, user_id, device_id)
) STRICT;

CREATE TABLE webhooks (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	sdk_app_id      INTEGER NOT NULL REFERENCES apps (sdk_app_id) ON DELETE CASCADE,
	event_id        TEXT NOT NULL UNIQUE,
	event_type      TEXT NOT NULL,
	body            BLOB,
	state           TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	lease_until     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX webhooks_app ON webhooks (sdk_app_id, created_at, id);
-- The outbox, as for deliveries: only pending rows are indexed.
CREATE INDEX webhooks_claim ON webhooks (next_attempt_at, id) WHERE state = 'pending';
`

// Version 3: the previous app secret, accepted for UserSigs during the
// grace period after a rotation (--secret-grace).
const schemaV3 = `
ALTER TABLE apps ADD COLUMN previous_secret_sealed BLOB;
ALTER TABLE apps ADD COLUMN previous_secret_until INTEGER NOT NULL DEFAULT 0;
`
