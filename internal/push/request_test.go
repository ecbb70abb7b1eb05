package push

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateRequest(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		code string // "" = valid
	}{
		{"empty", Request{}, ""},
		{"full", Request{Title: "t", Body: "b", Sound: "default", Badge: ptr(2), Expiration: ptr(int64(0)), CollapseID: "c",
			InterruptionLevel: "critical", Priority: 5, Token: "ABCDEF01"}, ""},
		{"negative expiration", Request{Expiration: ptr(int64(-1))}, CodeBadExpiration},
		{"collapse id 64 bytes", Request{CollapseID: strings.Repeat("c", 64)}, ""},
		{"collapse id 65 bytes", Request{CollapseID: strings.Repeat("c", 65)}, CodeBadCollapseID},
		{"interruption level", Request{InterruptionLevel: "loud"}, CodeBadInterruptionLevel},
		{"priority 7", Request{Priority: 7}, CodeBadPriority},
		{"background at 10", Request{ContentAvailable: true, Priority: 10}, CodeBadPriority},
		{"alert with content-available at 10", Request{Body: "b", ContentAvailable: true, Priority: 10}, ""},
		{"voip with content-available at 10", Request{VoIP: true, ContentAvailable: true, Priority: 10}, ""},
		{"ext not UTF-8", Request{Ext: "\xff"}, CodeBadExt},
		{"title not UTF-8", Request{Title: "\xff"}, CodeBadText},
		{"negative badge", Request{Badge: ptr(-1)}, CodeBadBadge},
		{"custom aps", Request{Custom: map[string]json.RawMessage{"aps": json.RawMessage(`{}`)}}, CodeBadCustom},
		{"custom ext", Request{Custom: map[string]json.RawMessage{"ext": json.RawMessage(`"x"`)}}, CodeBadCustom},
		{"custom not JSON", Request{Custom: map[string]json.RawMessage{"call_id": json.RawMessage(`abc`)}}, CodeBadCustom},
		{"token odd", Request{Token: "abc"}, CodeBadToken},
		{"token not hex", Request{Token: "zz"}, CodeBadToken},
		{"token too long", Request{Token: strings.Repeat("ab", 201)}, CodeBadToken},
		{"source empty is the API", Request{Source: ""}, ""},
		{"source api", Request{Source: SourceAPI}, ""},
		{"source call", Request{Source: SourceCall}, ""},
		{"source unknown", Request{Source: "cron"}, CodeBadSource},
		{"source is case-sensitive", Request{Source: "Call"}, CodeBadSource},
		{"source with spaces", Request{Source: " api"}, CodeBadSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRequest(tt.req)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Code != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestRequestJSONNames(t *testing.T) {
	b, err := json.Marshal(Request{CollapseID: "c", InterruptionLevel: "active", ThreadID: "t", MutableContent: true,
		ContentAvailable: true, VoIP: true, Expiration: ptr(int64(0))})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"collapse_id"`, `"interruption_level"`, `"thread_id"`, `"mutable_content"`, `"content_available"`, `"voip"`, `"expiration":0`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s missing from %s", k, b)
		}
	}
}

func TestSourceOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{{"", SourceAPI}, {SourceAPI, SourceAPI}, {SourceCall, SourceCall}} {
		if got := sourceOf(Request{Source: tt.in}); got != tt.want {
			t.Errorf("sourceOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
