// Package storetest is the one test suite every store.Store
// implementation must pass, so SQLite and PostgreSQL behave the same.
package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// Open returns a new, empty, migrated store; the implementation's test
// closes it in t.Cleanup.
type Open func(t *testing.T) store.Store

// Run runs the whole suite, each test against its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"Apps", testApps},
		{"AppConflict", testAppConflict},
		{"UpdateAppSecret", testUpdateAppSecret},
		{"RotateAppSecret", testRotateAppSecret},
		{"ResealSecrets", testResealSecrets},
		{"DeleteApp", testDeleteApp},
		{"Certificates", testCertificates},
		{"CertificateIDs", testCertificateIDs},
		{"CreateCertificatesAtomic", testCreateCertificatesAtomic},
		{"DeleteCertificate", testDeleteCertificate},
		{"MarkCertificateResult", testMarkCertificateResult},
		{"Registrations", testRegistrations},
		{"RegistrationMovesUser", testRegistrationMovesUser},
		{"Eviction", testEviction},
		{"RemoveRegistrationIfBefore", testRemoveRegistrationIfBefore},
		{"MarkRegistrationResult", testMarkRegistrationResult},
		{"MoveAndDeleteRegistration", testMoveAndDeleteRegistration},
		{"Pushes", testPushes},
		{"PushList", testPushList},
		{"CreatePushAtomic", testCreatePushAtomic},
		{"CreatePushes", testCreatePushes},
		{"CreatePushesAtomic", testCreatePushesAtomic},
		{"RegistrationsOfUsers", testRegistrationsOfUsers},
		{"Claim", testClaim},
		{"ClaimLimit", testClaimLimit},
		{"ClaimConcurrent", testClaimConcurrent},
		{"FinishAttempt", testFinishAttempt},
		{"FinishAttempts", testFinishAttempts},
		{"FinishAttemptsAtomic", testFinishAttemptsAtomic},
		{"FinishAttemptsLargeGroup", testFinishAttemptsLargeGroup},
		{"PushesByID", testPushesByID},
		{"OutboxDepth", testOutboxDepth},
		{"ReleaseLeases", testReleaseLeases},
		{"ExpirePushes", testExpirePushes},
		{"PutCall", testPutCall},
		{"PutCallRefused", testPutCallRefused},
		{"PutCallConcurrent", testPutCallConcurrent},
		{"ConcurrentWritesOfManyKinds", testConcurrentWritesOfManyKinds},
		{"CallList", testCallList},
		{"CallListDefaultLimit", testCallListDefaultLimit},
		{"ActiveCalls", testActiveCalls},
		{"CallsOfInvitee", testCallsOfInvitee},
		{"Sessions", testSessions},
		{"AppSettings", testAppSettings},
		{"Webhooks", testWebhooks},
		{"ClaimWebhooks", testClaimWebhooks},
		{"ClaimWebhooksConcurrent", testClaimWebhooksConcurrent},
		{"NotFound", testNotFound},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// t0 is a fixed instant with whole milliseconds, which is what stores
// keep, so round trips compare equal.
var t0 = time.UnixMilli(1_700_000_000_000).UTC()

// at is t0 plus sec seconds.
func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}
