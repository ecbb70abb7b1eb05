package apns

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateNotification(t *testing.T) {
	before1970 := time.Unix(-1, 0)
	cases := []struct {
		name   string
		mod    func(n *Notification)
		reason string // "" = valid
		msg    string // substring of the message
	}{
		{"valid voip", func(n *Notification) {}, "", ""},
		{"uppercase hex token", func(n *Notification) { n.DeviceToken = strings.ToUpper(testToken) }, "", ""},
		{"short token", func(n *Notification) { n.DeviceToken = "abcd" }, "", ""},
		{"empty token", func(n *Notification) { n.DeviceToken = "" }, "MissingDeviceToken", "empty"},
		{"odd token", func(n *Notification) { n.DeviceToken = "abc" }, "BadDeviceToken", "odd"},
		{"non-hex token", func(n *Notification) { n.DeviceToken = "zz" + testToken[2:] }, "BadDeviceToken", "not hex"},
		{"path injection", func(n *Notification) { n.DeviceToken = "ab/../x" }, "BadDeviceToken", ""},
		{"huge token", func(n *Notification) { n.DeviceToken = strings.Repeat("ab", 600) }, "BadDeviceToken", ""},
		{"empty payload", func(n *Notification) { n.Payload = nil }, "PayloadEmpty", ""},
		{"alert 4096", func(n *Notification) { n.PushType = PushTypeAlert; n.Payload = make([]byte, 4096) }, "", ""},
		{"alert 4200", func(n *Notification) { n.PushType = PushTypeAlert; n.Payload = make([]byte, 4200) },
			"PayloadTooLarge", "payload is 4200 bytes; APNs allows 4096 (5120 for VoIP)"},
		{"voip 5120", func(n *Notification) { n.Payload = make([]byte, 5120) }, "", ""},
		{"voip 5121", func(n *Notification) { n.Payload = make([]byte, 5121) }, "PayloadTooLarge", "5121 bytes; APNs allows 5120 for VoIP"},
		{"collapse 64", func(n *Notification) { n.CollapseID = strings.Repeat("c", 64) }, "", ""},
		{"collapse 65", func(n *Notification) { n.CollapseID = strings.Repeat("c", 65) }, "BadCollapseId", "65 bytes"},
		{"collapse newline", func(n *Notification) { n.CollapseID = "a\nb" }, "BadCollapseId", ""},
		{"priority 0", func(n *Notification) { n.Priority = 0 }, "", ""},
		{"priority 1", func(n *Notification) { n.Priority = 1 }, "", ""},
		{"priority 5", func(n *Notification) { n.Priority = 5 }, "", ""},
		{"priority 7", func(n *Notification) { n.Priority = 7 }, "BadPriority", "7"},
		{"background 10", func(n *Notification) { n.PushType = PushTypeBackground }, "BadPriority", "background"},
		{"uuid", func(n *Notification) { n.ID = "123e4567-e89b-12d3-a456-426614174000" }, "", ""},
		{"uuid uppercase", func(n *Notification) { n.ID = "123E4567-E89B-12D3-A456-426614174000" }, "BadMessageId", ""},
		{"uuid no dashes", func(n *Notification) { n.ID = "123e4567e89b12d3a456426614174000" }, "BadMessageId", ""},
		{"uuid misplaced dash", func(n *Notification) { n.ID = "123e4567e-89b-12d3-a456-42661417400" }, "BadMessageId", ""},
		{"push type empty", func(n *Notification) { n.PushType = "" }, "InvalidPushType", ""},
		{"push type unknown", func(n *Notification) { n.PushType = "call" }, "InvalidPushType", ""},
		{"topic control char", func(n *Notification) { n.Topic = "com.x\r\nx: y" }, "BadTopic", ""},
		{"expiration before 1970", func(n *Notification) { n.Expiration = &before1970 }, "BadExpirationDate", ""},
		{"no expiration", func(n *Notification) { n.Expiration = nil }, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := voipNotification()
			tc.mod(n)
			err := ValidateNotification(n)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Reason != tc.reason {
				t.Fatalf("err = %v, want reason %s", err, tc.reason)
			}
			if !strings.Contains(re.Message, tc.msg) {
				t.Errorf("message %q lacks %q", re.Message, tc.msg)
			}
			if _, _, ok := ReasonInfo(re.Reason); !ok {
				t.Errorf("reason %s is not in the table", re.Reason)
			}
		})
	}
	if err := ValidateNotification(nil); err == nil {
		t.Error("nil notification accepted")
	}
}

func TestRequestErrorStatus(t *testing.T) {
	if s := (&RequestError{Reason: "PayloadTooLarge"}).Status(); s != 413 {
		t.Errorf("PayloadTooLarge status = %d", s)
	}
	if s := (&RequestError{Reason: "Nope"}).Status(); s != 400 {
		t.Errorf("unknown status = %d", s)
	}
}
