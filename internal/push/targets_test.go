package push

import (
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

func reg(token, kind, device string, age time.Duration) store.Registration {
	return store.Registration{Token: token, Kind: kind, DeviceID: device, CertificateID: 10001,
		Environment: store.EnvProduction, RegisteredAt: time.Unix(1_700_000_000, 0).Add(-age)}
}

func TestSelectTargets(t *testing.T) {
	type want struct{ token, pushType, reason string }
	tests := []struct {
		name string
		regs []store.Registration
		req  Request
		want []want
	}{
		{"no registrations", nil, Request{}, nil},
		{"one alert", []store.Registration{reg("a1", store.KindAlert, "", 0)}, Request{Body: "b"},
			[]want{{"a1", apns.PushTypeAlert, ""}}},
		{"voip request picks the voip token of the device",
			[]store.Registration{reg("a1", store.KindAlert, "phone", 0), reg("v1", store.KindVoIP, "phone", time.Hour)}, Request{VoIP: true},
			[]want{{"v1", apns.PushTypeVoIP, ""}}},
		{"alert request picks the alert token of the device",
			[]store.Registration{reg("a1", store.KindAlert, "phone", time.Hour), reg("v1", store.KindVoIP, "phone", 0)}, Request{Body: "b"},
			[]want{{"a1", apns.PushTypeAlert, ""}}},
		{"voip request falls back to alert without a voip token",
			[]store.Registration{reg("a1", store.KindAlert, "phone", 0)}, Request{VoIP: true, Body: "b"},
			[]want{{"a1", apns.PushTypeAlert, ""}}},
		{"newest alert token of a device wins",
			[]store.Registration{reg("old", store.KindAlert, "phone", time.Hour), reg("new", store.KindAlert, "phone", 0)}, Request{},
			[]want{{"new", apns.PushTypeAlert, ""}}},
		{"only voip and an alert request", []store.Registration{reg("v1", store.KindVoIP, "phone", 0)}, Request{Body: "b"},
			[]want{{"v1", apns.PushTypeVoIP, ReasonNoAlertRegistration}}},
		{"tokens without device ID are separate devices, newest first",
			[]store.Registration{reg("a1", store.KindAlert, "", time.Hour), reg("v1", store.KindVoIP, "", 0)}, Request{VoIP: true},
			[]want{{"v1", apns.PushTypeVoIP, ""}, {"a1", apns.PushTypeAlert, ""}}},
		{"two devices", []store.Registration{
			reg("a1", store.KindAlert, "phone", 0), reg("v1", store.KindVoIP, "phone", 0),
			reg("a2", store.KindAlert, "ipad", time.Minute)}, Request{VoIP: true},
			[]want{{"v1", apns.PushTypeVoIP, ""}, {"a2", apns.PushTypeAlert, ""}}},
		{"background", []store.Registration{reg("a1", store.KindAlert, "", 0)}, Request{ContentAvailable: true},
			[]want{{"a1", apns.PushTypeBackground, ""}}},
		{"excluded device is skipped", []store.Registration{
			reg("a1", store.KindAlert, "phone", 0), reg("v1", store.KindVoIP, "phone", 0),
			reg("a2", store.KindAlert, "ipad", time.Minute)}, Request{VoIP: true, ExcludeDevices: []string{"phone"}},
			[]want{{"a2", apns.PushTypeAlert, ""}}},
		{"every device excluded", []store.Registration{reg("a1", store.KindAlert, "phone", 0), reg("a2", store.KindAlert, "ipad", 0)},
			Request{ExcludeDevices: []string{"ipad", "phone"}}, nil},
		{"registration without device ID is never excluded", []store.Registration{
			reg("a1", store.KindAlert, "", 0), reg("a2", store.KindAlert, "ipad", time.Minute)},
			Request{ExcludeDevices: []string{"", "ipad"}},
			[]want{{"a1", apns.PushTypeAlert, ""}}},
		{"unknown excluded device changes nothing", []store.Registration{reg("a1", store.KindAlert, "phone", 0)},
			Request{ExcludeDevices: []string{"watch"}}, []want{{"a1", apns.PushTypeAlert, ""}}},
		{"excluded voip-only device does not fail with NoAlertRegistration", []store.Registration{
			reg("v1", store.KindVoIP, "phone", 0), reg("a2", store.KindAlert, "ipad", time.Minute)},
			Request{Body: "b", ExcludeDevices: []string{"phone"}}, []want{{"a2", apns.PushTypeAlert, ""}}},
		{"device IDs match exactly", []store.Registration{reg("a1", store.KindAlert, "Phone", 0)},
			Request{ExcludeDevices: []string{"phone"}}, []want{{"a1", apns.PushTypeAlert, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selectTargets(tt.regs, tt.req)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d targets, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.reg.Token != w.token || g.pushType != w.pushType || g.reason != w.reason {
					t.Errorf("target %d = {%s %s %q}, want %+v", i, g.reg.Token, g.pushType, g.reason, w)
				}
			}
		})
	}
}

func TestPriorityAndTopic(t *testing.T) {
	tests := []struct {
		req      Request
		pushType string
		want     int
	}{
		{Request{}, apns.PushTypeAlert, 10},
		{Request{Priority: 5}, apns.PushTypeAlert, 5},
		{Request{Priority: 5}, apns.PushTypeVoIP, 10},
		{Request{}, apns.PushTypeBackground, 5},
		{Request{Priority: 1}, apns.PushTypeBackground, 1},
	}
	for _, tt := range tests {
		if got := priorityOf(tt.req, tt.pushType); got != tt.want {
			t.Errorf("priorityOf(%+v, %s) = %d, want %d", tt.req, tt.pushType, got, tt.want)
		}
	}
	if got := topicOf("com.example.app", apns.PushTypeVoIP); got != "com.example.app.voip" {
		t.Errorf("voip topic %s", got)
	}
	if got := topicOf("com.example.app", apns.PushTypeBackground); got != "com.example.app" {
		t.Errorf("background topic %s", got)
	}
}
