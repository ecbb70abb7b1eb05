package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/console"
	"github.com/ringd/ringd/internal/httpapi"
)

var metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

type httpClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newHTTPClient(t *testing.T, base string) *httpClient {
	jar, _ := cookiejar.New(nil)
	return &httpClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (h *httpClient) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.base+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// csrfOf reads the page's CSRF token.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := metaCSRF.FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		t.Fatalf("no CSRF token in the page")
	}
	return m[1]
}

// signIn signs in with token and returns the session's CSRF token.
func (h *httpClient) signIn(token string) string {
	h.t.Helper()
	_, page := h.do("GET", "/console/login", nil, nil)
	resp, _ := h.do("POST", "/console/login", url.Values{"csrf": {csrfOf(h.t, page)}, "token": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("sign-in: %s", resp.Status)
	}
	_, page = h.do("GET", "/console/apps", nil, nil)
	return csrfOf(h.t, page)
}

func TestSignInSessionCookie(t *testing.T) {
	srv := startDev(t)
	h := newHTTPClient(t, srv.URL())
	_, page := h.do("GET", "/console/login", nil, nil)
	loginCSRF := csrfOf(t, page)

	// Without the sign-in form's token (login CSRF): refused.
	fresh := newHTTPClient(t, srv.URL())
	if resp, _ := fresh.do("POST", "/console/login", url.Values{"token": {srv.AdminToken()}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without its form token: %s, want 403", resp.Status)
	}
	// A wrong token: refused, no session.
	if resp, _ := h.do("POST", "/console/login", url.Values{"csrf": {loginCSRF}, "token": {"wrong"}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %s, want 401", resp.Status)
	}
	_, page = h.do("GET", "/console/login", nil, nil)
	resp, _ := h.do("POST", "/console/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {srv.AdminToken()}, "next": {"/console/dashboard"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/dashboard" {
		t.Fatalf("sign-in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "ringd_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" || session.Secure || len(session.Value) < 40 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not Secure over plain HTTP", session)
	}
	if r, _ := h.do("GET", "/console/dashboard", nil, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("dashboard after sign-in: %s", r.Status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv := startDev(t)
	h := newHTTPClient(t, srv.URL())
	for _, path := range []string{"/console/login", "/console/static/console.js", "/console/static/console.css", "/console/nope"} {
		resp, _ := h.do("GET", path, nil, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	// Signed out: pages redirect to the sign-in, JSON gets 401.
	if resp, _ := h.do("GET", "/console/apps", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login?next=") {
		t.Fatalf("signed-out page: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := h.do("GET", "/console/dashboard/data", nil, map[string]string{"Accept": "application/json"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out JSON: %s", resp.Status)
	}
}

// TestCSRF: a state-changing request without the session's CSRF token, or
// from another site, is refused.
func TestCSRF(t *testing.T) {
	srv := startDev(t)
	h := newHTTPClient(t, srv.URL())
	csrf := h.signIn(srv.AdminToken())
	create := url.Values{"name": {"csrf test"}}
	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no token":               {create, nil},
		"wrong token":            {url.Values{"name": {"x"}, "csrf": {"not-it"}}, nil},
		"wrong header":           {create, map[string]string{"X-CSRF-Token": "not-it"}},
		"cross-site, token ok":   {url.Values{"name": {"x"}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"other origin, token ok": {url.Values{"name": {"x"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}},
	} {
		if resp, _ := h.do("POST", "/console/apps", tc.form, tc.hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", name, resp.Status)
		}
	}
	if resp, _ := h.do("POST", "/console/logout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the token: %s, want 403", resp.Status)
	}
	resp, page := h.do("POST", "/console/apps", url.Values{"name": {"csrf test"}, "csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "csrf test") {
		t.Fatalf("create with the token: %s", resp.Status)
	}
	// The fetch path: the token in the header.
	if resp, _ := h.do("POST", "/console/apps", url.Values{"name": {"by header"}}, map[string]string{"X-CSRF-Token": csrf}); resp.StatusCode != http.StatusOK {
		t.Fatalf("create with the header token: %s", resp.Status)
	}
	// Sign out ends the session.
	if resp, _ := h.do("POST", "/console/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if resp, _ := h.do("GET", "/console/apps", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out: %s, want a redirect to sign in", resp.Status)
	}
}

// fakeServices answers the app list only; the pages under test need no more.
type fakeServices struct {
	console.Services
	apps []httpapi.App
}

func (f fakeServices) Apps(context.Context) ([]httpapi.App, error) { return f.apps, nil }

func TestNoSimulatorWithoutDev(t *testing.T) {
	c, err := console.New(console.Config{Services: fakeServices{}, AdminToken: "secret-admin-token"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(c.Handler())
	defer ts.Close()
	h := newHTTPClient(t, ts.URL)
	h.signIn("secret-admin-token")
	if resp, _ := h.do("GET", "/console/simulator", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("simulator without --dev: %s, want 404", resp.Status)
	}
	if _, page := h.do("GET", "/console/dashboard", nil, nil); strings.Contains(page, `href="/console/simulator"`) {
		t.Fatal("the menu links to the simulator without --dev")
	}
}
