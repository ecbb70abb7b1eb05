package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ringd/ringd/internal/jsondepth"
)

// Body limits: every request body is bounded.
const (
	maxJSONBody   = 64 << 10
	maxUploadBody = 96 << 10 // a 64 KiB file plus the form fields
)

// maxJSONDepth bounds the nesting of a request body. No ringd request
// nests beyond a handful of levels; encoding/json alone would allow 10000.
const maxJSONDepth = 32

// decodeJSON reads one JSON object of at most limit bytes into T, refusing
// unknown fields and trailing data, so a typo is an error, not a silent default.
// A body that is not valid UTF-8 or nests deeper than maxJSONDepth is
// refused before it is parsed (encoding/json would silently replace
// invalid bytes with U+FFFD; the WebSocket gateway refuses them too).
func decodeJSON[T any](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var v T
	// The body is read as JSON whatever Content-Type says (curl -d sends
	// form-urlencoded), except a multipart form, which is surely a mistake.
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		return v, apiErr(http.StatusUnsupportedMediaType, "bad_content_type", "send the body as JSON (Content-Type: application/json)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return v, jsonError(err, limit)
	}
	if err := checkJSONText(body); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, jsonError(err, limit)
	}
	if dec.More() {
		return v, apiErr(http.StatusBadRequest, "bad_json", "the body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, apiErr(http.StatusBadRequest, "bad_json", "the body must hold exactly one JSON object")
	}
	return v, nil
}

// checkJSONText refuses invalid UTF-8 and nesting deeper than
// maxJSONDepth in one pass, without parsing.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return apiErr(http.StatusBadRequest, "bad_utf8", "the body is not valid UTF-8")
	}
	if i := jsondepth.Exceeds(b, maxJSONDepth); i >= 0 {
		return apiErr(http.StatusBadRequest, "json_too_deep", "the body nests deeper than %d levels (at byte %d)", maxJSONDepth, i)
	}
	return nil
}

func jsonError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return apiErr(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over %d bytes", limit)
	case errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, "bad_json", "the body is empty; send a JSON object")
	case errors.As(err, &syntax):
		return apiErr(http.StatusBadRequest, "bad_json", "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return apiErr(http.StatusBadRequest, "bad_json", "field %q must be a %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return apiErr(http.StatusBadRequest, "unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return apiErr(http.StatusBadRequest, "bad_json", "malformed JSON: %v", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// strictInto decodes a JSON object over v, refusing unknown fields.
func strictInto(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, maxJSONBody)
	}
	return nil
}
