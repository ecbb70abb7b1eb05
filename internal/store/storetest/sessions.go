package storetest

import (
	"fmt"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

func testSessions(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	phone := &store.Session{SDKAppID: app, UserID: "alice", DeviceID: "phone", ConnectedAt: at(10)}
	tablet := &store.Session{SDKAppID: app, UserID: "alice", DeviceID: "tablet", ConnectedAt: at(11)}
	must(t, s.PutSession(ctx, phone))
	must(t, s.PutSession(ctx, tablet))

	// The phone disconnects, then connects again.
	phone.DisconnectedAt = at(20)
	must(t, s.PutSession(ctx, phone))
	tests := []struct {
		name   string
		device string
		want   *store.Session
	}{
		{"disconnected", "phone", phone},
		{"connected", "tablet", tablet},
	}
	for _, tt := range tests {
		got, err := s.Session(ctx, app, "alice", tt.device)
		must(t, err)
		equal(t, "Session "+tt.name, *got, *tt.want)
	}
	reconnected := &store.Session{SDKAppID: app, UserID: "alice", DeviceID: "phone", ConnectedAt: at(30)}
	must(t, s.PutSession(ctx, reconnected))
	got, err := s.Session(ctx, app, "alice", "phone")
	must(t, err)
	equal(t, "Session after a reconnect", *got, *reconnected)

	_, err = s.Session(ctx, app, "bob", "phone")
	wantErr(t, "Session of another user", err, store.ErrNotFound)
	err = s.PutSession(ctx, &store.Session{SDKAppID: 1400000009, UserID: "alice", DeviceID: "phone"})
	wantErr(t, "PutSession in an unknown app", err, store.ErrNotFound)

	// Many at once, one device twice (its last entry wins), over one chunk.
	var batch []*store.Session
	for i := range 150 {
		batch = append(batch, &store.Session{SDKAppID: app, UserID: "bob", DeviceID: fmt.Sprint("d", i), ConnectedAt: at(40)})
	}
	batch = append(batch, &store.Session{SDKAppID: app, UserID: "bob", DeviceID: "d7", ConnectedAt: at(40), DisconnectedAt: at(41)})
	must(t, s.PutSessions(ctx, batch))
	for _, want := range []*store.Session{batch[0], batch[149], batch[150]} {
		got, err := s.Session(ctx, app, "bob", want.DeviceID)
		must(t, err)
		equal(t, "PutSessions "+want.DeviceID, *got, *want)
	}
	// An unknown app fails the whole batch: nothing is written.
	err = s.PutSessions(ctx, []*store.Session{
		{SDKAppID: app, UserID: "carol", DeviceID: "phone", ConnectedAt: at(50)},
		{SDKAppID: 1400000009, UserID: "carol", DeviceID: "phone", ConnectedAt: at(50)},
	})
	wantErr(t, "PutSessions with an unknown app", err, store.ErrNotFound)
	_, err = s.Session(ctx, app, "carol", "phone")
	wantErr(t, "Session after the failed batch", err, store.ErrNotFound)
	must(t, s.PutSessions(ctx, nil))
}

func testAppSettings(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustApp(t, s, 1400000002)
	settings := func(what string, id int64, want string) {
		t.Helper()
		got, err := s.AppSettings(ctx, id)
		must(t, err)
		equal(t, "AppSettings "+what, string(got), want)
	}
	tests := []struct {
		name string
		put  string // "" to put nothing
		want string
	}{
		{"never set", "", "{}"},
		{"set", `{"ring_timeout":"30s"}`, `{"ring_timeout":"30s"}`},
		{"replaced", `{"sound":"bell.caf"}`, `{"sound":"bell.caf"}`},
	}
	for _, tt := range tests {
		if tt.put != "" {
			must(t, s.PutAppSettings(ctx, app, []byte(tt.put)))
		}
		settings(tt.name, app, tt.want)
	}
	settings("of the other app", 1400000002, "{}")
	must(t, s.PutAppSettings(ctx, app, nil))
	settings("put empty", app, "{}")
}
