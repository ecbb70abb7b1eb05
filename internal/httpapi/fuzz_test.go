package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/push"
)

// FuzzDecodePushRequest feeds arbitrary bodies to the push endpoint's
// decoder and validation: they must refuse or accept, never panic, and
// whatever is accepted must build a payload within Apple's limits.
func FuzzDecodePushRequest(f *testing.F) {
	for _, s := range []string{
		`{"user":"alice","title":"Hi","body":"there","ext":"{\"entity\":{}}","voip":true}`,
		`{"users":["a","b"],"expiration":0,"collapse_id":"x","interruption_level":"time-sensitive"}`,
		`{"user":"a","custom":{"call_id":"c1","uuid":"u"},"badge":3,"sound":"ring.caf"}`,
		`{"user":"a","content_available":true,"priority":5}`,
		`{"user":"a","nope":1}`, `[]`, `{"user":`, ``, `{"user":"a"}{"user":"b"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/apps/1/pushes", strings.NewReader(body))
		req, err := decodeJSON[PushRequest](httptest.NewRecorder(), r, maxJSONBody)
		if err != nil {
			if _, ok := asAPIError(err); !ok {
				t.Fatalf("decode error is not an API error: %v", err)
			}
			return
		}
		if push.ValidateRequest(req.Request) != nil {
			return
		}
		for _, pt := range []string{"alert", "voip"} {
			payload, err := push.BuildPayload(req.Request, pt)
			if err == nil && len(payload) > 5120 {
				t.Fatalf("payload of %d bytes built for %s", len(payload), pt)
			}
		}
	})
}
