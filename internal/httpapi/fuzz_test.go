package httpapi

import (
	"net/http"
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

// FuzzDecodeBodies feeds arbitrary bodies to the decoder of every other
// JSON body the REST API takes: it must refuse with an API error or
// accept, never panic.
func FuzzDecodeBodies(f *testing.F) {
	for _, s := range []string{
		`{"business_id":10001,"token":"0f0f0f0f0f0f0f0f","voip":true,"device_id":"d"}`,
		`{"caller":"alice","invitees":["bob"],"media":"video","timeout":30,"push":{"voip":false}}`,
		`{"name":"app"}`, `{"token":"ab"}`, `{"ring_timeout":30,"webhook_url":"https://x"}`,
		`[[[[[[[[[[`, "{\"name\":\"\xff\"}", `{"a":1}`,
	} {
		f.Add(s)
	}
	decoders := []func(*httptest.ResponseRecorder, string) error{
		func(w *httptest.ResponseRecorder, b string) error {
			_, err := decodeJSON[SetAPNS](w, post(b), maxJSONBody)
			return err
		},
		func(w *httptest.ResponseRecorder, b string) error {
			_, err := decodeJSON[StartCall](w, post(b), maxJSONBody)
			return err
		},
		func(w *httptest.ResponseRecorder, b string) error {
			_, err := decodeJSON[struct {
				Name string `json:"name"`
			}](w, post(b), maxJSONBody)
			return err
		},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, decode := range decoders {
			if err := decode(httptest.NewRecorder(), body); err != nil {
				if _, ok := asAPIError(err); !ok {
					t.Fatalf("decode error is not an API error: %v", err)
				}
			}
		}
	})
}

func post(body string) *http.Request {
	return httptest.NewRequest("POST", "/v1/x", strings.NewReader(body))
}
