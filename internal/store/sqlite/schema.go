package sqlite

import "github.com/ringd/ringd/internal/store/sqlstore"

// migrations is append-only: never edit a released entry, add a new one.
// Version N of the schema is the first N entries. Keep it in step with
// the postgres package's list.
var migrations = []sqlstore.Migration{
	sqlstore.SQL(schemaV1),
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
