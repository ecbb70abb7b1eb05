package push

import (
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

var (
	prodCert = &store.Certificate{ID: 10001, Environment: store.EnvProduction, BundleID: "com.example.app", Type: "p12", VoIP: true}
	devCert  = &store.Certificate{ID: 10002, Environment: store.EnvDevelopment, BundleID: "com.example.app", Type: "p12", VoIP: true}
	p8Cert   = &store.Certificate{ID: 10003, Environment: store.EnvProduction, BundleID: "com.example.app", Type: "p8", KeyID: "ABCDE12345"}
)

func TestDiagnosisTexts(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want []string
		not  []string
	}{
		{"bad devicetoken on production with a development certificate",
			diagnoseEnvMismatch("BadDeviceToken", apns.PushTypeAlert, prodCert, devCert),
			[]string{"bad devicetoken", "production APNs host", "Debug builds are development tokens", "TestFlight and App Store builds get production tokens",
				"certificate ID 10002 (development)", "retries once through certificate ID 10002", "token is kept"}, []string{"upload"}},
		{"bad devicetoken on development with a production certificate",
			diagnoseEnvMismatch("BadDeviceToken", apns.PushTypeAlert, devCert, prodCert),
			[]string{"bad devicetoken", "development (sandbox) APNs host", "TestFlight and App Store builds with certificate ID 10001 (production)"}, nil},
		{"bad devicetoken without another certificate",
			diagnoseEnvMismatch("BadDeviceToken", apns.PushTypeVoIP, prodCert, nil),
			[]string{"bad devicetoken", "No development certificate that can send VoIP pushes", "upload one for the development environment"}, []string{"retries"}},
		{"bad certificate environment",
			diagnoseEnvMismatch("BadCertificateEnvironment", apns.PushTypeAlert, prodCert, devCert),
			[]string{"certificate ID 10001", "uploaded as production", "development certificate", "10002"}, nil},
		{"environment-scoped key",
			diagnoseEnvMismatch("BadEnvironmentKeyInToken", apns.PushTypeAlert, p8Cert, nil),
			[]string{"p8 key of certificate ID 10003", "ABCDE12345", "scoped to the development environment", "upload one"}, nil},
		{"voip token not for topic",
			diagnoseConfiguration("DeviceTokenNotForTopic", apns.PushTypeVoIP, prodCert, 10001, false),
			[]string{"not a PushKit token for com.example.app.voip", `"voip": true`}, nil},
		{"alert token not for topic",
			diagnoseConfiguration("DeviceTokenNotForTopic", apns.PushTypeAlert, prodCert, 10001, false),
			[]string{"not an alert token for com.example.app", "didRegisterForRemoteNotificationsWithDeviceToken"}, nil},
		{"topic disallowed for voip",
			diagnoseConfiguration("TopicDisallowed", apns.PushTypeVoIP, prodCert, 10001, false),
			[]string{"may not push to com.example.app.voip", "VoIP Services certificate or a p8 key"}, nil},
		{"invalid provider token",
			diagnoseConfiguration("InvalidProviderToken", apns.PushTypeAlert, p8Cert, 10003, false),
			[]string{"InvalidProviderToken", "key ID (ABCDE12345)", "token is kept"}, nil},
		{"bad devicetoken in both environments",
			diagnoseConfiguration("BadDeviceToken", apns.PushTypeAlert, devCert, 10001, true),
			[]string{"bad devicetoken", "also rejected", "either environment", "still uses certificate ID 10001"}, nil},
		{"410 removed",
			diagnoseTokenDead("Unregistered", time.Unix(1_700_000_000, 0), true),
			[]string{"uninstalled or the token expired at 2023-11-14T22:13:20Z", "registration is removed"}, nil},
		{"410 kept",
			diagnoseTokenDead("Unregistered", time.Unix(1_700_000_000, 0), false),
			[]string{"registered after that", "registration is kept"}, nil},
		{"no devices", diagnoseNoDevices("bob"), []string{`"bob"`, "PUT /v1/me/apns", "after every login"}, nil},
		{"no alert registration", diagnoseNoAttempt(&store.Delivery{Reason: ReasonNoAlertRegistration}, time.Time{}),
			[]string{"didRegisterForRemoteNotificationsWithDeviceToken", "not the PushKit one"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.got, w) {
					t.Errorf("missing %q in:\n%s", w, tt.got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(tt.got, n) {
					t.Errorf("unexpected %q in:\n%s", n, tt.got)
				}
			}
		})
	}
}

func TestCanPushVoIP(t *testing.T) {
	alertOnly := &store.Certificate{BundleID: "com.example.app", Type: "p12"}
	withTopic := &store.Certificate{BundleID: "com.example.app", Type: "p12", Topics: []string{"com.example.app", "com.example.app.voip"}}
	for _, tt := range []struct {
		c    *store.Certificate
		want bool
	}{{alertOnly, false}, {withTopic, true}, {p8Cert, true}, {devCert, true}} {
		if got := canPush(tt.c, apns.PushTypeVoIP); got != tt.want {
			t.Errorf("canPush(%+v) = %v", tt.c, got)
		}
	}
	if !canPush(alertOnly, apns.PushTypeAlert) {
		t.Error("alert certificate cannot send alerts?")
	}
}
