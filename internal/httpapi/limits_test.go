package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/store/sqlite"
)

const testAdminToken = "admin-token-0123456789"

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type apiEnv struct {
	api *API
	h   http.Handler
	clk *testClock
	cfg Config
}

// newAPI is an API over a fresh SQLite store with a clock the test moves.
func newAPI(t *testing.T, limits Limits, grace time.Duration) *apiEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ringd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sealer, err := credentials.NewSealer(bytes.Repeat([]byte{7}, credentials.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Now()}
	cfg := Config{Store: st, Sealer: sealer, AdminToken: testAdminToken, MaxDevices: 10, Now: clk.Now, Limits: limits, SecretGrace: grace}
	a := New(cfg)
	return &apiEnv{api: a, h: a.Handler(), clk: clk, cfg: cfg}
}

// reopen is another API (a restart, or another node) on the same store.
func (e *apiEnv) reopen() *apiEnv {
	a := New(e.cfg)
	return &apiEnv{api: a, h: a.Handler(), clk: e.clk, cfg: e.cfg}
}

// do sends a request from ip with the Authorization header auth.
func (e *apiEnv) do(method, path, ip, authz, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = ip + ":1234"
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func codeOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e Error
	if w.Code < 300 {
		return ""
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	return e.Code
}

func (e *apiEnv) createApp(t *testing.T) App {
	t.Helper()
	app, err := e.api.CreateApp(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func (e *apiEnv) sig(t *testing.T, app int64, key, user string) string {
	t.Helper()
	s, err := auth.GenUserSig(app, key, user, 48*time.Hour, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return "UserSig " + s
}

// Brute force of the admin token: past the per-IP budget every request
// from that IP is refused with 429 and Retry-After, the right token too,
// while other IPs go on; the budget refills with time.
func TestAdminTokenBruteForce(t *testing.T) {
	e := newAPI(t, Limits{AuthFailuresPerIP: 5, AuthFailuresPerApp: 100}, 0)
	for i := range 5 {
		if w := e.do("GET", "/v1/apps", "192.0.2.1", "Bearer wrong-"+fmt.Sprint(i), ""); codeOf(t, w) != "bad_admin_token" {
			t.Fatalf("failure %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := e.do("GET", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, "")
	if w.Code != http.StatusTooManyRequests || codeOf(t, w) != "auth_rate_limited" {
		t.Fatalf("right token after 5 failures: %d %s, want 429 auth_rate_limited", w.Code, w.Body)
	}
	if ra := w.Header().Get("Retry-After"); ra != "12" { // one of 5 per minute
		t.Fatalf("Retry-After %q, want 12", ra)
	}
	if w := e.do("GET", "/v1/apps", "192.0.2.2", "Bearer "+testAdminToken, ""); w.Code != http.StatusOK {
		t.Fatalf("another IP: %d %s", w.Code, w.Body)
	}
	e.clk.Add(12 * time.Second)
	if w := e.do("GET", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, ""); w.Code != http.StatusOK {
		t.Fatalf("after the wait: %d %s", w.Code, w.Body)
	}
	// Missing credentials are not guesses and do not count.
	for range 10 {
		e.do("GET", "/v1/apps", "192.0.2.3", "", "")
	}
	if w := e.do("GET", "/v1/apps", "192.0.2.3", "Bearer "+testAdminToken, ""); w.Code != http.StatusOK {
		t.Fatalf("after requests without credentials: %d %s", w.Code, w.Body)
	}
}

// UserSig guessing: per IP (any failure that could be a guess) and per
// app (bad signatures from any IP). Past the app's budget even a valid
// UserSig of that app is refused; other apps are unaffected. Expired
// UserSigs are authentic and count against nothing.
func TestUserSigBruteForce(t *testing.T) {
	e := newAPI(t, Limits{AuthFailuresPerIP: 3, AuthFailuresPerApp: 6}, 0)
	a, b := e.createApp(t), e.createApp(t)
	path := func(app App) string { return fmt.Sprintf("/v1/apps/%d", app.SDKAppID) }
	good := e.sig(t, a.SDKAppID, a.SecretKey, AppAdminIdentifier)

	// Per IP: 3 failures, then 429 for a valid sig too.
	for i := range 3 {
		w := e.do("GET", path(a), "198.51.100.1", e.sig(t, a.SDKAppID, "guess"+fmt.Sprint(i), AppAdminIdentifier), "")
		if codeOf(t, w) != "usersig_bad_signature" {
			t.Fatalf("guess %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := e.do("GET", path(a), "198.51.100.1", good, ""); codeOf(t, w) != "auth_rate_limited" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("valid sig from a blocked IP: %d %s", w.Code, w.Body)
	}
	// Malformed and unknown-app sigs count per IP too.
	e.do("GET", path(a), "198.51.100.2", "UserSig garbage", "")
	e.do("GET", path(a), "198.51.100.2", e.sig(t, 1, "k", "u"), "")
	e.do("GET", path(a), "198.51.100.2", "UserSig garbage", "")
	if w := e.do("GET", path(a), "198.51.100.2", good, ""); codeOf(t, w) != "auth_rate_limited" {
		t.Fatalf("after malformed and unknown-app sigs: %d %s", w.Code, w.Body)
	}

	// Per app: bad signatures from many IPs (one each) exhaust the app.
	for i := range 3 { // 3 from the first IP already counted
		e.do("GET", path(a), fmt.Sprintf("203.0.113.%d", i+1), e.sig(t, a.SDKAppID, "guess", "u"), "")
	}
	w := e.do("GET", path(a), "203.0.113.100", good, "")
	if codeOf(t, w) != "auth_rate_limited" || !strings.Contains(w.Body.String(), fmt.Sprint(a.SDKAppID)) {
		t.Fatalf("valid sig of an app under attack: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", path(b), "203.0.113.100", e.sig(t, b.SDKAppID, b.SecretKey, AppAdminIdentifier), ""); w.Code != http.StatusOK {
		t.Fatalf("another app: %d %s", w.Code, w.Body)
	}
	e.clk.Add(time.Minute)
	if w := e.do("GET", path(a), "203.0.113.100", good, ""); w.Code != http.StatusOK {
		t.Fatalf("after a minute: %d %s", w.Code, w.Body)
	}

	// Expired sigs do not count.
	old, err := auth.GenUserSig(b.SDKAppID, b.SecretKey, "u", time.Second, e.clk.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if w := e.do("GET", "/v1/me/apns", "203.0.113.200", "UserSig "+old, ""); codeOf(t, w) != "usersig_expired" {
			t.Fatalf("expired: %d %s", w.Code, w.Body)
		}
	}
}

// The WebSocket gateway's check counts against the same budgets.
func TestAuthenticateRequestLimited(t *testing.T) {
	e := newAPI(t, Limits{AuthFailuresPerIP: 2}, 0)
	a := e.createApp(t)
	r := httptest.NewRequest("GET", "/v1/connect", nil)
	r.RemoteAddr = "192.0.2.9:5555"
	for range 2 {
		if _, _, err := e.api.AuthenticateRequest(r, "garbage"); err == nil {
			t.Fatal("garbage accepted")
		}
	}
	sig, _ := auth.GenUserSig(a.SDKAppID, a.SecretKey, "alice", time.Hour, e.clk.Now())
	_, _, err := e.api.AuthenticateRequest(r, sig)
	var wait interface{ RetryAfter() time.Duration }
	if codeOfErr(err) != "auth_rate_limited" || !errors.As(err, &wait) || wait.RetryAfter() <= 0 {
		t.Fatalf("valid sig from a blocked IP over the gateway: %v", err)
	}
}

// After a rotation, UserSigs made with the old key are valid for the
// grace period, also after a restart (the previous key is stored), then
// refused; without grace they are refused at once.
func TestSecretGrace(t *testing.T) {
	e := newAPI(t, Limits{}, time.Hour)
	app := e.createApp(t)
	oldSig := e.sig(t, app.SDKAppID, app.SecretKey, "alice")
	rotated, err := e.api.RotateSecret(t.Context(), app.SDKAppID)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.PreviousSecretValidUntil == nil || !rotated.PreviousSecretValidUntil.Equal(e.clk.Now().UTC().Add(time.Hour)) {
		t.Fatalf("PreviousSecretValidUntil = %v", rotated.PreviousSecretValidUntil)
	}
	newSig := e.sig(t, app.SDKAppID, rotated.SecretKey, "alice")
	check := func(e *apiEnv, what, sig, want string) {
		t.Helper()
		if got := codeOf(t, e.do("GET", "/v1/me/apns", "192.0.2.1", sig, "")); got != want {
			t.Fatalf("%s: code %q, want %q", what, got, want)
		}
	}
	check(e, "old sig in the grace period", oldSig, "")
	check(e, "new sig", newSig, "")
	restarted := e.reopen()
	check(restarted, "old sig in the grace period after a restart", oldSig, "")

	e.clk.Add(time.Hour - time.Second)
	check(e, "old sig just before the end", oldSig, "")
	e.clk.Add(time.Second)
	check(e, "old sig after the grace period", oldSig, "usersig_bad_signature")
	check(restarted, "old sig after the grace period, restarted", oldSig, "usersig_bad_signature")
	check(e.reopen(), "old sig after the grace period, cold cache", oldSig, "usersig_bad_signature")
	check(e, "new sig after the grace period", newSig, "")

	// A second rotation: only the key it replaced is in grace.
	again, err := e.api.RotateSecret(t.Context(), app.SDKAppID)
	if err != nil {
		t.Fatal(err)
	}
	check(e, "first key after two rotations", oldSig, "usersig_bad_signature")
	check(e, "second key in its grace period", newSig, "")
	check(e, "third key", e.sig(t, app.SDKAppID, again.SecretKey, "alice"), "")

	// No grace period.
	strict := newAPI(t, Limits{}, 0)
	app = strict.createApp(t)
	oldSig = strict.sig(t, app.SDKAppID, app.SecretKey, "alice")
	rotated, err = strict.api.RotateSecret(t.Context(), app.SDKAppID)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.PreviousSecretValidUntil != nil {
		t.Fatalf("PreviousSecretValidUntil = %v without grace", rotated.PreviousSecretValidUntil)
	}
	check(strict, "old sig without grace", oldSig, "usersig_bad_signature")
	check(strict.reopen(), "old sig without grace, cold cache", oldSig, "usersig_bad_signature")
}

// A key rotated by another node is picked up: a UserSig that does not
// match the cached key makes the API read the key again (at most every
// keyReloadAfter).
func TestRotationOnAnotherNode(t *testing.T) {
	e := newAPI(t, Limits{}, time.Hour)
	app := e.createApp(t)
	warm := e.reopen()
	if got := codeOf(t, warm.do("GET", "/v1/me/apns", "192.0.2.1", e.sig(t, app.SDKAppID, app.SecretKey, "a"), "")); got != "" {
		t.Fatalf("before: %q", got)
	}
	rotated, err := e.api.RotateSecret(t.Context(), app.SDKAppID)
	if err != nil {
		t.Fatal(err)
	}
	newSig := e.sig(t, app.SDKAppID, rotated.SecretKey, "a")
	e.clk.Add(keyReloadAfter)
	if got := codeOf(t, warm.do("GET", "/v1/me/apns", "192.0.2.1", newSig, "")); got != "" {
		t.Fatalf("the other node refused the new key: %q", got)
	}
}

// Deep JSON is refused before parsing, quickly and without allocating in
// proportion to the depth; a body over the size limit is refused first.
func TestDeepJSON(t *testing.T) {
	e := newAPI(t, Limits{}, 0)
	for _, tt := range []struct {
		name, body, code string
	}{
		{"100k deep, over the size limit", strings.Repeat("[", 100_000), "body_too_large"},
		{"60k deep", strings.Repeat("[", 60_000), "json_too_deep"},
		{"deep inside an object", `{"name":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat("}", 41), "json_too_deep"},
	} {
		start := time.Now()
		w := e.do("POST", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, tt.body)
		if codeOf(t, w) != tt.code {
			t.Fatalf("%s: %d %s, want %s", tt.name, w.Code, w.Body, tt.code)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%s: took %v", tt.name, took)
		}
	}

	// The decoder itself, with a limit that lets 100k levels in.
	body := strings.Repeat("[", 100_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	_, err := decodeJSON[map[string]any](httptest.NewRecorder(), r, 1<<20)
	runtime.ReadMemStats(&after)
	if c := codeOfErr(err); c != "json_too_deep" {
		t.Fatalf("decodeJSON of 100k levels: %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Fatalf("decodeJSON of a 100 KB body allocated %d bytes", n)
	}
	// Depth up to the limit is fine.
	ok := `{"name":"x","nested":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`
	if err := checkJSONText([]byte(ok)); err != nil {
		t.Fatalf("depth %d refused: %v", maxJSONDepth, err)
	}
}

func codeOfErr(err error) string {
	if e, ok := asAPIError(err); ok {
		return e.Code
	}
	return ""
}

// Invalid UTF-8 is refused with bad_utf8, never silently replaced with
// U+FFFD; valid non-ASCII text is kept.
func TestInvalidUTF8Body(t *testing.T) {
	e := newAPI(t, Limits{}, 0)
	w := e.do("POST", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, "{\"name\":\"caf\xe9\"}")
	if codeOf(t, w) != "bad_utf8" {
		t.Fatalf("invalid UTF-8: %d %s", w.Code, w.Body)
	}
	w = e.do("POST", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, `{"name":"café ☎"}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), "café ☎") {
		t.Fatalf("valid UTF-8: %d %s", w.Code, w.Body)
	}
	// An escaped lone surrogate is valid JSON text; encoding/json turns it
	// into U+FFFD, which is what is stored.
	w = e.do("POST", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, `{"name":"a\ud800b"}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), "a\ufffdb") {
		t.Fatalf("escaped surrogate: %d %s", w.Code, w.Body)
	}
}

// Oversized bodies: 413 body_too_large on JSON endpoints.
func TestOversizedBody(t *testing.T) {
	e := newAPI(t, Limits{}, 0)
	body := `{"name":"` + strings.Repeat("x", maxJSONBody) + `"}`
	if w := e.do("POST", "/v1/apps", "192.0.2.1", "Bearer "+testAdminToken, body); w.Code != http.StatusRequestEntityTooLarge || codeOf(t, w) != "body_too_large" {
		t.Fatalf("oversized body: %d %s", w.Code, w.Body)
	}
}
