// Package push is ringd's delivery pipeline: it turns a push request into
// one outbox delivery per device, sends the deliveries through APNs with
// bounded retries, applies Apple's answer to the token and the certificate,
// and explains every outcome in a trace.
package push

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ringd/ringd/internal/apns"
)

// Request is what an app server or ringd's call service asks to send to a
// user. It is stored as JSON with the push, so a worker can rebuild the
// notification after a restart; the HTTP API body is this plus the users.
type Request struct {
	Title    string `json:"title,omitempty"`
	Subtitle string `json:"subtitle,omitempty"`
	Body     string `json:"body,omitempty"`
	// Ext is delivered as the top-level "ext" string, as Tencent delivers
	// OfflinePushInfo.Ext, so TUICallKit-style apps read userInfo["ext"].
	Ext string `json:"ext,omitempty"`
	// Sound is "" for no sound key, "default", or a bundled file name.
	Sound string `json:"sound,omitempty"`
	Badge *int   `json:"badge,omitempty"`
	// VoIP asks for a PushKit push on devices that registered a VoIP token;
	// other devices get an alert (Tencent's IsVoipPush rule).
	VoIP bool `json:"voip,omitempty"`
	// Expiration is in unix seconds: 0 means deliver now or never
	// (apns-expiration "0"), nil means the configured default TTL.
	Expiration        *int64 `json:"expiration,omitempty"`
	CollapseID        string `json:"collapse_id,omitempty"`
	InterruptionLevel string `json:"interruption_level,omitempty"`
	ThreadID          string `json:"thread_id,omitempty"`
	Category          string `json:"category,omitempty"`
	MutableContent    bool   `json:"mutable_content,omitempty"`
	ContentAvailable  bool   `json:"content_available,omitempty"`
	// Priority 0 means the default: 10, or 5 for a background push.
	Priority int `json:"priority,omitempty"`
	// Token restricts the push to this one registration of the user.
	Token string `json:"token,omitempty"`
	// Custom holds extra top-level payload keys (the call service puts
	// call_id, uuid, caller... here).
	Custom map[string]json.RawMessage `json:"custom,omitempty"`
	// ExcludeDevices skips these device IDs (the call service leaves out
	// devices that are connected in the foreground).
	ExcludeDevices []string `json:"exclude_devices,omitempty"`
	// Source labels metrics: "api" (default) or "call".
	Source string `json:"source,omitempty"`
}

// Stable error codes of a refused request. The HTTP API returns them and
// clients switch on them, so they never change once released.
const (
	CodeBadExpiration        = "bad_expiration"
	CodeBadCollapseID        = "bad_collapse_id"
	CodeBadInterruptionLevel = "bad_interruption_level"
	CodeBadPriority          = "bad_priority"
	CodeBadExt               = "bad_ext"
	CodeBadText              = "bad_text"
	CodeBadBadge             = "bad_badge"
	CodeBadCustom            = "bad_custom"
	CodePayloadTooLarge      = "payload_too_large"
	CodeBadToken             = "bad_token"
	CodeTokenNotRegistered   = "token_not_registered"
	CodeBadUser              = "bad_user"
	CodeTooManyUsers         = "too_many_users"
	CodeBadSource            = "bad_source"
)

// Sources of a request: who asked for the push. They label the
// accept-to-request latency and the final-outcome events.
const (
	SourceAPI  = "api"  // an app server through the HTTP API (the default)
	SourceCall = "call" // ringd's call service ringing an invitee
)

// MaxBatchUsers bounds SubmitBatch.
const MaxBatchUsers = 1000

// maxTokenHex bounds a token: Apple's tokens are variable length (32 bytes
// today), so allow room to grow while refusing garbage.
const maxTokenHex = 400

// Error is a refused request: Code is stable, Message says what to fix.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when set, is when the same request may succeed
	// (CodeOutboxFull): the HTTP API sends it as Retry-After.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is matches on the code alone, so errors.Is(err, &Error{Code: ...}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

var interruptionLevels = map[string]bool{"": true, "passive": true, "active": true, "time-sensitive": true, "critical": true}

// reservedKeys may not be set through Custom: they belong to the payload's
// own fields.
var reservedKeys = map[string]bool{"aps": true, "ext": true}

// ValidateRequest checks what can be checked without a clock or the store.
// Sizes are checked by Submit once the payload is built.
func ValidateRequest(req Request) error {
	checks := []func(Request) *Error{checkExpiration, checkHeaders, checkText, checkBadge, checkCustom, checkToken, checkSource}
	for _, check := range checks {
		if err := check(req); err != nil {
			return err
		}
	}
	return nil
}

func checkExpiration(req Request) *Error {
	if req.Expiration != nil && *req.Expiration < 0 {
		return errorf(CodeBadExpiration, "expiration must be unix seconds, or 0 for deliver now or never (got %d)", *req.Expiration)
	}
	return nil
}

func checkHeaders(req Request) *Error {
	if len(req.CollapseID) > apns.MaxCollapseID {
		return errorf(CodeBadCollapseID, "collapse_id is %d bytes; APNs accepts at most %d", len(req.CollapseID), apns.MaxCollapseID)
	}
	if !interruptionLevels[req.InterruptionLevel] {
		return errorf(CodeBadInterruptionLevel, "interruption_level %q is not one of passive, active, time-sensitive, critical", req.InterruptionLevel)
	}
	switch req.Priority {
	case 0, 1, 5, 10:
	default:
		return errorf(CodeBadPriority, "priority must be 10, 5 or 1 (got %d)", req.Priority)
	}
	// Apple: "Using priority 10 is an error" for a background push.
	if req.Priority == 10 && !req.VoIP && isBackground(req) {
		return errorf(CodeBadPriority, "a background push (content_available without alert text) must use priority 5 or 1, not 10")
	}
	return nil
}

func checkText(req Request) *Error {
	if !utf8.ValidString(req.Ext) {
		return errorf(CodeBadExt, "ext must be valid UTF-8 text")
	}
	fields := [...]struct{ name, v string }{{"title", req.Title}, {"subtitle", req.Subtitle}, {"body", req.Body},
		{"sound", req.Sound}, {"collapse_id", req.CollapseID}, {"thread_id", req.ThreadID}, {"category", req.Category}}
	for _, f := range fields {
		if !utf8.ValidString(f.v) {
			return errorf(CodeBadText, "%s must be valid UTF-8 text", f.name)
		}
	}
	return nil
}

func checkBadge(req Request) *Error {
	if req.Badge != nil && *req.Badge < 0 {
		return errorf(CodeBadBadge, "badge must be 0 (clear) or more (got %d)", *req.Badge)
	}
	return nil
}

func checkCustom(req Request) *Error {
	for k, v := range req.Custom {
		if reservedKeys[k] {
			return errorf(CodeBadCustom, "custom key %q is reserved: use the request's own fields", k)
		}
		if k == "" || !utf8.ValidString(k) {
			return errorf(CodeBadCustom, "custom keys must be non-empty UTF-8 text")
		}
		if !json.Valid(v) {
			return errorf(CodeBadCustom, "custom key %q does not hold valid JSON", k)
		}
	}
	return nil
}

func checkToken(req Request) *Error {
	if req.Token == "" {
		return nil
	}
	if len(req.Token)%2 != 0 || len(req.Token) > maxTokenHex || !isHex(req.Token) {
		return errorf(CodeBadToken, "token must be the device token in hex (an even number of 0-9a-f characters, at most %d)", maxTokenHex)
	}
	return nil
}

func checkSource(req Request) *Error {
	switch req.Source {
	case "", SourceAPI, SourceCall:
		return nil
	}
	return errorf(CodeBadSource, "source must be %q or %q (got %q)", SourceAPI, SourceCall, req.Source)
}

// sourceOf is a request's source, "" being the API.
func sourceOf(req Request) string {
	if req.Source == "" {
		return SourceAPI
	}
	return req.Source
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// hasAlertText tells whether the push shows something to the user.
func hasAlertText(req Request) bool {
	return req.Title != "" || req.Subtitle != "" || req.Body != ""
}

// isBackground tells whether an alert-token delivery is a silent
// content-available push (push type background, priority 5).
func isBackground(req Request) bool {
	return req.ContentAvailable && !hasAlertText(req)
}
