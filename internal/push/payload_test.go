package push

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/apns"
)

func ptr[T any](v T) *T { return &v }

func TestBuildPayload(t *testing.T) {
	tests := []struct {
		name     string
		req      Request
		pushType string
		want     string
	}{
		{"empty alert", Request{}, apns.PushTypeAlert, `{"aps":{}}`},
		{"alert fields", Request{Title: "Alice", Subtitle: "video call", Body: "is calling you", Sound: "default", Badge: ptr(3),
			ThreadID: "t1", Category: "CALL", MutableContent: true, InterruptionLevel: "time-sensitive"}, apns.PushTypeAlert,
			`{"aps":{"alert":{"title":"Alice","subtitle":"video call","body":"is calling you"},"badge":3,"sound":"default","thread-id":"t1","category":"CALL","mutable-content":1,"interruption-level":"time-sensitive"}}`},
		{"badge zero clears", Request{Badge: ptr(0)}, apns.PushTypeAlert, `{"aps":{"badge":0}}`},
		{"alert with content-available", Request{Body: "hi", ContentAvailable: true}, apns.PushTypeAlert,
			`{"aps":{"alert":{"body":"hi"},"content-available":1}}`},
		{"background", Request{ContentAvailable: true, Badge: ptr(1), Ext: "x"}, apns.PushTypeBackground,
			`{"aps":{"content-available":1},"ext":"x"}`},
		{"ext is a top-level string", Request{Body: "b", Ext: `{"entity":{"action":2}}`}, apns.PushTypeAlert,
			`{"aps":{"alert":{"body":"b"}},"ext":"{\"entity\":{\"action\":2}}"}`},
		{"voip keeps alert text only", Request{Title: "Alice", Sound: "ring.caf", Badge: ptr(1), Ext: "e"}, apns.PushTypeVoIP,
			`{"aps":{"alert":{"title":"Alice"}},"ext":"e"}`},
		{"custom keys sorted and compacted", Request{Custom: map[string]json.RawMessage{
			"uuid": json.RawMessage(`"5c1c"`), "call_id": json.RawMessage(`{ "a" : 1 }`), "caller": json.RawMessage(`["x", 2]`)}}, apns.PushTypeVoIP,
			`{"aps":{},"call_id":{"a":1},"caller":["x",2],"uuid":"5c1c"}`},
		{"escapes", Request{Body: "a\"b\\c\n\t\x01 <&> \u2028 é"}, apns.PushTypeAlert,
			`{"aps":{"alert":{"body":"a\"b\\c\n\t\u0001 <&> \u2028 é"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildPayload(tt.req, tt.pushType)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestBuildPayloadMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "\x00\x1f\x7f", "bad \xff utf8", "emoji 📞", "\u2029", `back\slash`} {
		got, err := BuildPayload(Request{Body: s}, apns.PushTypeAlert)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			APS struct {
				Alert struct{ Body string } `json:"alert"`
			} `json:"aps"`
		}
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("%q: %v in %s", s, err, got)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if v.APS.Alert.Body != want {
			t.Errorf("%q round-trips to %q", s, v.APS.Alert.Body)
		}
	}
}

func TestBuildPayloadSizeLimits(t *testing.T) {
	// {"aps":{},"ext":"..."} is 18 bytes around the ext text.
	const overhead = len(`{"aps":{},"ext":""}`)
	tests := []struct {
		name     string
		size     int
		pushType string
		ok       bool
	}{
		{"alert at 4096", 4096, apns.PushTypeAlert, true},
		{"alert at 4097", 4097, apns.PushTypeAlert, false},
		{"background at 4097", 4097, apns.PushTypeBackground, false},
		{"voip at 4097", 4097, apns.PushTypeVoIP, true},
		{"voip at 5120", 5120, apns.PushTypeVoIP, true},
		{"voip at 5121", 5121, apns.PushTypeVoIP, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Ext: strings.Repeat("x", tt.size-overhead)}
			if tt.pushType == apns.PushTypeBackground {
				req.ContentAvailable = true
				req.Ext = strings.Repeat("x", tt.size-overhead-len(`"content-available":1`))
			}
			b, err := BuildPayload(req, tt.pushType)
			if tt.ok {
				if err != nil || len(b) != tt.size {
					t.Fatalf("size %d, err %v", len(b), err)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Code != CodePayloadTooLarge {
				t.Fatalf("err = %v, want payload_too_large", err)
			}
			if !strings.Contains(perr.Message, "bytes") || !strings.Contains(perr.Message, "at most") {
				t.Errorf("message should name the sizes: %s", perr.Message)
			}
		})
	}
}

func TestBuildPayloadRefusesReservedCustomKey(t *testing.T) {
	_, err := BuildPayload(Request{Custom: map[string]json.RawMessage{"aps": json.RawMessage(`{}`)}}, apns.PushTypeAlert)
	if !errors.Is(err, &Error{Code: CodeBadCustom}) {
		t.Fatalf("err = %v", err)
	}
	if _, err := BuildPayload(Request{}, "mdm"); err == nil {
		t.Fatal("unknown push type accepted")
	}
}

func FuzzBuildPayload(f *testing.F) {
	f.Add("Alice", "is calling", `{"entity":{}}`, "call_id", `"abc"`)
	f.Fuzz(func(t *testing.T, title, body, ext, key, value string) {
		req := Request{Title: title, Body: body, Ext: ext, Custom: map[string]json.RawMessage{key: json.RawMessage(value)}}
		if ValidateRequest(req) != nil {
			return
		}
		b, err := BuildPayload(req, apns.PushTypeAlert)
		if err == nil && !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
	})
}

func BenchmarkBuildPayload(b *testing.B) {
	req := Request{
		Title: "Alice", Body: "Incoming video call", Sound: "ring.caf", VoIP: true,
		Ext: `{"entity":{"version":1,"action":2,"chatType":1,"sender":"alice","sendTime":1595234231,"content":"{\"action\":1,\"call_type\":2,\"room_id\":804544637,\"call_id\":\"144115224095613335-1595234230-3304653590\",\"timeout\":30,\"version\":4,\"invited_list\":[\"bob\"]}"}}`,
		Custom: map[string]json.RawMessage{
			"call_id": json.RawMessage(`"144115224095613335-1595234230-3304653590"`),
			"uuid":    json.RawMessage(`"0b0c5d1e-8f5a-4b6e-9d7c-2f1e3a4b5c6d"`),
			"caller":  json.RawMessage(`{"user_id":"alice","name":"Alice"}`),
		},
	}
	for _, pt := range []string{apns.PushTypeAlert, apns.PushTypeVoIP} {
		b.Run(pt, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := BuildPayload(req, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A push handed to a worker at once is sent with the payloads built when
// it was accepted; a claimed one with those of its stored request. Both
// must say the same to the device.
func TestAcceptedPlanMatchesStoredRequest(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name string
		req  Request
	}{
		{"alert", Request{Title: "Alice", Body: "is calling <you> & me", Sound: "default", Badge: ptr(2)}},
		{"voip with custom", Request{VoIP: true, Body: "call", Ext: `{"entity":{"action":2}}`, Priority: 10,
			Custom: map[string]json.RawMessage{"call_id": json.RawMessage(` "c<1>" `), "invitees": json.RawMessage(`[ "a", "b&c" ]`)}}},
		{"background", Request{ContentAvailable: true, Ext: "x"}},
		{"unicode", Request{Body: "\u2028 é 😀", Token: "ABCDEF"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.svc.prepare(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := decodeRequest(p.reqJSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{apns.PushTypeVoIP, apns.PushTypeAlert, apns.PushTypeBackground} {
				a, errA := p.plan.payload(typ)
				b, errB := stored.payload(typ)
				if (errA == nil) != (errB == nil) {
					t.Fatalf("%s: errors differ: %v / %v", typ, errA, errB)
				}
				if errA != nil {
					continue
				}
				var va, vb any
				if err := json.Unmarshal(a, &va); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &vb); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(va, vb) {
					t.Errorf("%s: accepted %s, stored %s", typ, a, b)
				}
			}
		})
	}
}
