package storetest

import (
	"testing"

	"github.com/ringd/ringd/internal/store"
)

const app = 1400000001

// regWorld is an app with one certificate, for registration tests.
func regWorld(t *testing.T, open Open) (store.Store, *store.Certificate) {
	t.Helper()
	s := open(t)
	mustApp(t, s, app)
	return s, mustCert(t, s, app, store.EnvProduction)
}

func testRegistrations(t *testing.T, open Open) {
	s, c := regWorld(t, open)
	ctx := t.Context()
	late := newReg(app, "alice", "bb02", c.ID, "phone", 20)
	early := newReg(app, "alice", "aa01", c.ID, "", 10)
	early.Kind, early.Environment = store.KindAlert, store.EnvDevelopment
	mustPut(t, s, late, 0)
	mustPut(t, s, early, 0)
	mustPut(t, s, newReg(app, "bob", "cc03", c.ID, "", 5), 0)

	got, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	equal(t, "Registration", *got, *early)
	regs, err := s.Registrations(ctx, app, "alice")
	must(t, err)
	equal(t, "Registrations, oldest first", regs, []store.Registration{*early, *late})
	regs, err = s.Registrations(ctx, app, "nobody")
	must(t, err)
	equal(t, "Registrations of nobody", len(regs), 0)

	_, err = s.PutRegistration(ctx, newReg(1400000009, "alice", "dd04", c.ID, "", 1), 0)
	wantErr(t, "PutRegistration in an unknown app", err, store.ErrNotFound)
}

// A token registered again under another user moves, with everything
// about it: a phone that changed hands must not ring for the old owner.
func testRegistrationMovesUser(t *testing.T, open Open) {
	s, c := regWorld(t, open)
	ctx := t.Context()
	c2 := mustCert(t, s, app, store.EnvDevelopment)
	old := newReg(app, "alice", "aa01", c.ID, "phone-1", 10)
	mustPut(t, s, old, 0)
	must(t, s.MarkRegistrationResult(ctx, app, "aa01", at(11), "BadDeviceToken"))

	moved := &store.Registration{SDKAppID: app, UserID: "bob", Token: "aa01",
		CertificateID: c2.ID, Environment: store.EnvDevelopment, Kind: store.KindAlert,
		DeviceID: "phone-2", RegisteredAt: at(20)}
	mustPut(t, s, moved, 0)

	got, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	equal(t, "moved registration", *got, *moved)
	regs, err := s.Registrations(ctx, app, "alice")
	must(t, err)
	equal(t, "alice's registrations", len(regs), 0)
	regs, err = s.Registrations(ctx, app, "bob")
	must(t, err)
	equal(t, "bob's registrations", tokens(regs), []string{"aa01"})
}

func testEviction(t *testing.T, open Open) {
	tests := []struct {
		name        string
		before      []*store.Registration // put with no limit
		put         *store.Registration
		max         int
		wantEvicted []string
		wantLeft    []string // alice's tokens, oldest first
	}{{
		name:     "under the limit",
		before:   []*store.Registration{newReg(app, "alice", "t1", 0, "d1", 1)},
		put:      newReg(app, "alice", "t2", 0, "d2", 2),
		max:      2,
		wantLeft: []string{"t1", "t2"},
	}, {
		name: "oldest device goes",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "d1", 1),
			newReg(app, "alice", "t2", 0, "d2", 2),
		},
		put:         newReg(app, "alice", "t3", 0, "d3", 3),
		max:         2,
		wantEvicted: []string{"t1"},
		wantLeft:    []string{"t2", "t3"},
	}, {
		name: "a device goes with all its tokens",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "d1", 1), // d1's alert token
			newReg(app, "alice", "t2", 0, "d1", 2), // d1's VoIP token
			newReg(app, "alice", "t3", 0, "d2", 3),
		},
		put:         newReg(app, "alice", "t4", 0, "d3", 4),
		max:         2,
		wantEvicted: []string{"t1", "t2"},
		wantLeft:    []string{"t3", "t4"},
	}, {
		name: "a device's age is its newest token",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "d1", 1),
			newReg(app, "alice", "t2", 0, "d2", 2),
			newReg(app, "alice", "t3", 0, "d1", 3),
		},
		put:         newReg(app, "alice", "t4", 0, "d3", 4),
		max:         2,
		wantEvicted: []string{"t2"},
		wantLeft:    []string{"t1", "t3", "t4"},
	}, {
		name: "tokens without a device ID are devices",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "", 1),
			newReg(app, "alice", "t2", 0, "", 2),
		},
		put:         newReg(app, "alice", "t3", 0, "", 3),
		max:         2,
		wantEvicted: []string{"t1"},
		wantLeft:    []string{"t2", "t3"},
	}, {
		name: "registering a token again is not a new device",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "", 1),
			newReg(app, "alice", "t2", 0, "", 2),
		},
		put:      newReg(app, "alice", "t1", 0, "", 3),
		max:      2,
		wantLeft: []string{"t2", "t1"},
	}, {
		name: "other users' devices do not count",
		before: []*store.Registration{
			newReg(app, "bob", "t1", 0, "d1", 1),
			newReg(app, "bob", "t2", 0, "d2", 2),
		},
		put:      newReg(app, "alice", "t3", 0, "d3", 3),
		max:      1,
		wantLeft: []string{"t3"},
	}, {
		name: "a token moved in from another user counts",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "d1", 1),
			newReg(app, "bob", "t2", 0, "d2", 2),
		},
		put:         newReg(app, "alice", "t2", 0, "d2", 3),
		max:         1,
		wantEvicted: []string{"t1"},
		wantLeft:    []string{"t2"},
	}, {
		name: "zero means no limit",
		before: []*store.Registration{
			newReg(app, "alice", "t1", 0, "d1", 1),
			newReg(app, "alice", "t2", 0, "d2", 2),
		},
		put:      newReg(app, "alice", "t3", 0, "d3", 3),
		max:      0,
		wantLeft: []string{"t1", "t2", "t3"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := regWorld(t, open)
			for _, r := range tt.before {
				r.CertificateID = c.ID
				mustPut(t, s, r, 0)
			}
			tt.put.CertificateID = c.ID
			evicted := mustPut(t, s, tt.put, tt.max)
			equal(t, "evicted", tokens(evicted), orEmpty(tt.wantEvicted))
			for _, e := range evicted {
				if _, err := s.Registration(t.Context(), app, e.Token); err == nil {
					t.Errorf("evicted token %s is still registered", e.Token)
				}
			}
			left, err := s.Registrations(t.Context(), app, "alice")
			must(t, err)
			equal(t, "left", tokens(left), tt.wantLeft)
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Apple's 410 carries the time the token stopped being valid: only a
// registration older than that is dead.
func testRemoveRegistrationIfBefore(t *testing.T, open Open) {
	tests := []struct {
		name        string
		before      int
		wantRemoved bool
	}{
		{"registered before", 11, true},
		{"registered at the same instant", 10, false},
		{"registered after", 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := regWorld(t, open)
			mustPut(t, s, newReg(app, "alice", "aa01", c.ID, "", 10), 0)
			removed, err := s.RemoveRegistrationIfBefore(t.Context(), app, "aa01", at(tt.before))
			must(t, err)
			equal(t, "removed", removed, tt.wantRemoved)
			_, err = s.Registration(t.Context(), app, "aa01")
			equal(t, "still registered", err == nil, !tt.wantRemoved)
		})
	}
}

func testMarkRegistrationResult(t *testing.T, open Open) {
	s, c := regWorld(t, open)
	ctx := t.Context()
	r := newReg(app, "alice", "aa01", c.ID, "", 10)
	mustPut(t, s, r, 0)
	must(t, s.MarkRegistrationResult(ctx, app, "aa01", at(20), ""))
	must(t, s.MarkRegistrationResult(ctx, app, "aa01", at(30), "BadDeviceToken"))
	got, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	r.LastSuccessAt, r.LastFailureAt, r.LastFailureReason = at(20), at(30), "BadDeviceToken"
	equal(t, "Registration after marks", *got, *r)
}

func testMoveAndDeleteRegistration(t *testing.T, open Open) {
	s, c := regWorld(t, open)
	ctx := t.Context()
	dev := mustCert(t, s, app, store.EnvDevelopment)
	r := newReg(app, "alice", "aa01", c.ID, "", 10)
	mustPut(t, s, r, 0)

	must(t, s.MoveRegistration(ctx, app, "aa01", dev.ID, store.EnvDevelopment))
	got, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	r.CertificateID, r.Environment = dev.ID, store.EnvDevelopment
	equal(t, "moved Registration", *got, *r)

	must(t, s.DeleteRegistration(ctx, app, "aa01"))
	_, err = s.Registration(ctx, app, "aa01")
	wantErr(t, "Registration after delete", err, store.ErrNotFound)
	wantErr(t, "second delete", s.DeleteRegistration(ctx, app, "aa01"), store.ErrNotFound)
}
