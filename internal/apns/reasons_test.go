package apns

import (
	"net/url"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// TestClassifyEveryReason is the reference's table (shared/reference/apns.md,
// "Reason strings by status"), row by row.
func TestClassifyEveryReason(t *testing.T) {
	cases := []struct {
		status int
		reason string
		want   Class
	}{
		{200, "", ClassDelivered},
		{400, "BadCollapseId", ClassBadRequest},
		{400, "BadDeviceToken", ClassConfiguration},
		{400, "BadExpirationDate", ClassBadRequest},
		{400, "BadMessageId", ClassBadRequest},
		{400, "BadPriority", ClassBadRequest},
		{400, "BadTopic", ClassConfiguration},
		{400, "DeviceTokenNotForTopic", ClassConfiguration},
		{400, "DuplicateHeaders", ClassBadRequest},
		{400, "IdleTimeout", ClassTransient},
		{400, "InvalidPushType", ClassBadRequest},
		{400, "MissingDeviceToken", ClassBadRequest},
		{400, "MissingTopic", ClassConfiguration},
		{400, "PayloadEmpty", ClassBadRequest},
		{400, "TopicDisallowed", ClassConfiguration},
		{403, "BadCertificate", ClassConfiguration},
		{403, "BadCertificateEnvironment", ClassConfiguration},
		{403, "ExpiredProviderToken", ClassTransient},
		{403, "Forbidden", ClassConfiguration},
		{403, "InvalidProviderToken", ClassConfiguration},
		{403, "MissingProviderToken", ClassConfiguration},
		{403, "UnrelatedKeyIdInToken", ClassConfiguration},
		{403, "BadEnvironmentKeyIdInToken", ClassConfiguration},
		{403, "BadEnvironmentKeyInToken", ClassConfiguration},
		{404, "BadPath", ClassBadRequest},
		{405, "MethodNotAllowed", ClassBadRequest},
		{410, "ExpiredToken", ClassTokenDead},
		{410, "Unregistered", ClassTokenDead},
		{413, "PayloadTooLarge", ClassBadRequest},
		{429, "TooManyProviderTokenUpdates", ClassTransient},
		{429, "TooManyRequests", ClassTransient},
		{500, "InternalServerError", ClassTransient},
		{503, "ServiceUnavailable", ClassTransient},
		{503, "Shutdown", ClassTransient},
		{400, "FeatureNotEnabled", ClassConfiguration},
		{400, "MissingChannelId", ClassBadRequest},
		{400, "BadChannelId", ClassBadRequest},
		// Unknown or missing reasons fall back on the status.
		{400, "SomethingNew", ClassBadRequest},
		{403, "SomethingNew", ClassConfiguration},
		{404, "", ClassBadRequest},
		{410, "", ClassTokenDead},
		{413, "", ClassBadRequest},
		{429, "", ClassTransient},
		{500, "", ClassTransient},
		{502, "SomethingNew", ClassTransient},
		{503, "", ClassTransient},
		{0, "", ClassTransient},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if got := Classify(tc.status, tc.reason); got != tc.want {
			t.Errorf("Classify(%d, %q) = %s, want %s", tc.status, tc.reason, got, tc.want)
		}
		seen[tc.reason] = true
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("reason %s is in the table but not in this test", r)
		}
	}
}

func TestReasonInfo(t *testing.T) {
	for _, r := range Reasons() {
		class, meaning, ok := ReasonInfo(r)
		if !ok || class == "" || len(meaning) < 10 {
			t.Errorf("ReasonInfo(%s) = %q, %q, %v", r, class, meaning, ok)
		}
		if e := reasons[r]; Classify(e.status, r) != class {
			t.Errorf("%s: ReasonInfo and Classify disagree", r)
		}
	}
	if _, _, ok := ReasonInfo("NoSuchReason"); ok {
		t.Error("unknown reason reported as known")
	}
}

func TestParseErrorBody(t *testing.T) {
	cases := []struct {
		body   string
		reason string
		ts     time.Time
	}{
		{`{"reason":"Unregistered","timestamp":1700000000123}`, "Unregistered", time.UnixMilli(1700000000123)},
		{`{"reason":"BadDeviceToken"}`, "BadDeviceToken", time.Time{}},
		{`{"reason":"Unregistered","timestamp":"oops"}`, "", time.Time{}},
		{`{"reason":"Unregistered","timestamp":-5}`, "Unregistered", time.Time{}},
		{`not json`, "", time.Time{}},
		{``, "", time.Time{}},
	}
	for _, tc := range cases {
		reason, ts := parseErrorBody([]byte(tc.body))
		if reason != tc.reason || !ts.Equal(tc.ts) {
			t.Errorf("parseErrorBody(%s) = %q %v, want %q %v", tc.body, reason, ts, tc.reason, tc.ts)
		}
	}
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"reason":"Unregistered","timestamp":1700000000123}`))
	f.Add([]byte(`{"reason":""}`))
	f.Add([]byte(`{"timestamp":1e300}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		reason, _ := parseErrorBody(b)
		if len(reason) > maxReasonLen {
			t.Fatalf("reason of %d bytes", len(reason))
		}
	})
}

func FuzzValidateNotification(f *testing.F) {
	f.Add("a1b2", "com.x.voip", "voip", "", "", 10, []byte(`{}`))
	f.Fuzz(func(t *testing.T, token, topic, pushType, id, collapse string, prio int, payload []byte) {
		n := &Notification{DeviceToken: token, Topic: topic, PushType: pushType, ID: id, CollapseID: collapse, Priority: prio, Payload: payload}
		if err := ValidateNotification(n); err != nil {
			return
		}
		// Whatever passes must be safe to put in a request: an HTTP/2
		// server refuses a header value with a control character, and a
		// path that is not a plain request target.
		for _, hf := range requestFields(n, "") {
			if !httpguts.ValidHeaderFieldName(hf.Name) || !httpguts.ValidHeaderFieldValue(hf.Value) {
				t.Fatalf("valid notification makes a bad header %q: %q", hf.Name, hf.Value)
			}
		}
		if u, err := url.ParseRequestURI(devicePath(n)); err != nil || u.Path != devicePath(n) {
			t.Fatalf("valid notification makes a bad path %q: %v", devicePath(n), err)
		}
	})
}
