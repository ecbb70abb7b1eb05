package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An error the server hit on its own deadline, while the client still
// waits, is overload: 503 with Retry-After, not a 500.
func TestUnexpectedErrorsMapping(t *testing.T) {
	a := New(Config{})
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		retryAfter bool
	}{
		{"deadline inside the server", fmt.Errorf("sqlite put call: %w", context.DeadlineExceeded), 503, "overloaded", true},
		{"other error", fmt.Errorf("boom"), 500, "internal", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			a.serve(func(http.ResponseWriter, *http.Request) error { return tt.err }).ServeHTTP(w, httptest.NewRequest("GET", "/v1/x", nil))
			if w.Code != tt.wantStatus || (w.Header().Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("got %d (Retry-After %q), want %d", w.Code, w.Header().Get("Retry-After"), tt.wantStatus)
			}
			if want := `"code":"` + tt.wantCode + `"`; !strings.Contains(w.Body.String(), want) {
				t.Fatalf("body %s, want %s", w.Body, want)
			}
		})
	}
}
