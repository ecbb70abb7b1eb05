package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
)

// isoReq is one request app B (or a confused admin) makes against app A's
// data, with the answer it must get.
type isoReq struct {
	route      string // the pattern of api.go it exercises
	method     string
	path       string
	authz      string
	body       string
	wantStatus int
	wantCode   string // "" with a 2xx status
}

// do sends a raw request and returns the status and body.
func rawDo(t *testing.T, base, method, path, authz, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiRoutes reads the route patterns of the REST API from its source, so
// that a route added later without an isolation case fails this test.
func apiRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../httpapi/api.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`"((?:GET|POST|PUT|DELETE|PATCH) /v1/[^"]*)":`).FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) < 20 {
		t.Fatalf("found only %d routes in api.go: did its layout change?", len(out))
	}
	return out
}

// TestAppIsolationEveryEntryPoint gives app B's administrator and one of its users every
// REST endpoint and every call request of the gateway, aimed at app A's
// data: nothing of A is read, nothing changes, and no answer carries A's
// data (only what B itself sent). The admin token, aimed through B's
// paths at A's records, finds nothing either.
func TestAppIsolationEveryEntryPoint(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	base := e.srv.URL()

	// App A: certificates, a device of alice, a push, a ringing call,
	// settings with a webhook.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer hook.Close()
	a := e.newCallApp(t)
	const secretDevice, secretTitle, secretRoom, secretData = "alice-phone-of-A", "title-of-A", "room-of-A", "data-of-A"
	tokenA := e.registerDevice(t, a, "alice", secretDevice, "alert")
	e.registerDevice(t, a, "bob", "bob-phone-of-A", "alert")
	secretHook := hook.URL + "/hook-of-A"
	settingsA := must[*client.Settings](t)(e.admin.Settings(ctx, a.SDKAppID))
	settingsA.WebhookURL = secretHook
	if _, err := e.admin.PutSettings(ctx, a.SDKAppID, *settingsA); err != nil {
		t.Fatal(err)
	}
	pushA := must[*client.PushResult](t)(e.admin.Send(ctx, a.SDKAppID, client.Push{User: "alice", Title: secretTitle}))
	callA := must[string](t)(e.admin.StartCall(ctx, a.SDKAppID, client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "audio", Timeout: 300, RoomID: secretRoom, Data: secretData}))
	pushIDA := pushA.PushID
	if pushIDA == "" {
		pushIDA = pushA.PushIDs[0]
	}
	certsA := must[[]client.Certificate](t)(e.admin.Certificates(ctx, a.SDKAppID))
	certA := certsA[0].ID
	before := snapshotApp(t, e, a.App, tokenA, callA, pushIDA)

	// App B: its own certificate, so that B's endpoints have something.
	b := e.newCallApp(t)
	bAdmin := "UserSig " + sigOf(t, b.App, "administrator")
	bUser := "UserSig " + sigOf(t, b.App, "alice") // the same user ID as A's alice
	admin := "Bearer " + e.srv.AdminToken()
	A, B := a.SDKAppID, b.SDKAppID

	var reqs []isoReq
	add := func(route, method, path, authz, body string, status int, code string) {
		reqs = append(reqs, isoReq{route, method, path, authz, body, status, code})
	}
	// Operator-only routes: B's UserSigs are refused whatever the app.
	for _, who := range []string{bAdmin, bUser} {
		add("POST /v1/apps", "POST", "/v1/apps", who, `{"name":"x"}`, 403, "admin_required")
		add("GET /v1/apps", "GET", "/v1/apps", who, "", 403, "admin_required")
		add("DELETE /v1/apps/{sdkappid}", "DELETE", fmt.Sprintf("/v1/apps/%d", A), who, "", 403, "admin_required")
		add("GET /v1/apps/{sdkappid}/secret", "GET", fmt.Sprintf("/v1/apps/%d/secret", A), who, "", 403, "admin_required")
		add("POST /v1/apps/{sdkappid}/secret/rotate", "POST", fmt.Sprintf("/v1/apps/%d/secret/rotate", A), who, "", 403, "admin_required")
		add("POST /v1/apps/{sdkappid}/certificates", "POST", fmt.Sprintf("/v1/apps/%d/certificates", A), who, "", 403, "admin_required")
		add("DELETE /v1/apps/{sdkappid}/certificates/{id}", "DELETE", fmt.Sprintf("/v1/apps/%d/certificates/%d", A, certA), who, "", 403, "admin_required")
	}
	// App-admin routes on A's path: A does not exist for B (404, the same
	// answer as for an app that does not exist).
	for _, who := range []string{bAdmin, bUser} {
		for _, r := range []struct{ route, method, path, body string }{
			{"GET /v1/apps/{sdkappid}", "GET", "/v1/apps/%d", ""},
			{"GET /v1/apps/{sdkappid}/certificates", "GET", "/v1/apps/%d/certificates", ""},
			{"GET /v1/apps/{sdkappid}/certificates/{id}", "GET", "/v1/apps/%d/certificates/" + fmt.Sprint(certA), ""},
			{"GET /v1/apps/{sdkappid}/users/{user}/devices", "GET", "/v1/apps/%d/users/alice/devices", ""},
			{"DELETE /v1/apps/{sdkappid}/devices/{token}", "DELETE", "/v1/apps/%d/devices/" + tokenA, ""},
			{"POST /v1/apps/{sdkappid}/pushes", "POST", "/v1/apps/%d/pushes", `{"user":"alice","title":"spoof"}`},
			{"GET /v1/apps/{sdkappid}/pushes", "GET", "/v1/apps/%d/pushes", ""},
			{"GET /v1/apps/{sdkappid}/pushes/{id}", "GET", "/v1/apps/%d/pushes/" + pushIDA, ""},
			{"GET /v1/apps/{sdkappid}/settings", "GET", "/v1/apps/%d/settings", ""},
			{"PUT /v1/apps/{sdkappid}/settings", "PUT", "/v1/apps/%d/settings", `{"webhook_url":"https://evil.example/"}`},
			{"POST /v1/apps/{sdkappid}/calls", "POST", "/v1/apps/%d/calls", `{"caller":"mallory","invitees":["alice"],"media":"audio"}`},
			{"GET /v1/apps/{sdkappid}/calls", "GET", "/v1/apps/%d/calls", ""},
			{"GET /v1/apps/{sdkappid}/calls/{call_id}", "GET", "/v1/apps/%d/calls/" + callA, ""},
			{"POST /v1/apps/{sdkappid}/calls/{call_id}/cancel", "POST", "/v1/apps/%d/calls/" + callA + "/cancel", ""},
			{"POST /v1/apps/{sdkappid}/calls/{call_id}/end", "POST", "/v1/apps/%d/calls/" + callA + "/end", ""},
		} {
			add(r.route, r.method, fmt.Sprintf(r.path, A), who, r.body, 404, "app_not_found")
			// The same through B's own path: A's records are unknown there.
			switch {
			case strings.Contains(r.route, "{id}") && strings.Contains(r.route, "certificates"):
				add(r.route, r.method, fmt.Sprintf(r.path, B), bAdmin, "", 404, "certificate_not_found")
				add(r.route, r.method, fmt.Sprintf(r.path, B), admin, "", 404, "certificate_not_found")
			case strings.Contains(r.route, "{token}"):
				add(r.route, r.method, fmt.Sprintf(r.path, B), bAdmin, "", 404, "registration_not_found")
				add(r.route, r.method, fmt.Sprintf(r.path, B), admin, "", 404, "registration_not_found")
			case strings.Contains(r.route, "pushes/{id}"):
				add(r.route, r.method, fmt.Sprintf(r.path, B), bAdmin, "", 404, "push_not_found")
				add(r.route, r.method, fmt.Sprintf(r.path, B), admin, "", 404, "push_not_found")
			case strings.Contains(r.route, "{call_id}"):
				add(r.route, r.method, fmt.Sprintf(r.path, B), bAdmin, "", 404, "call_not_found")
				add(r.route, r.method, fmt.Sprintf(r.path, B), admin, "", 404, "call_not_found")
			case r.method == "GET":
				add(r.route, r.method, fmt.Sprintf(r.path, B), bAdmin, "", 200, "")
			}
		}
	}
	// The operator confusing apps: A's certificate deleted through B's path.
	add("DELETE /v1/apps/{sdkappid}/certificates/{id}", "DELETE", fmt.Sprintf("/v1/apps/%d/certificates/%d?force=true", B, certA), admin, "", 404, "certificate_not_found")
	// User routes act for B's alice only.
	add("GET /v1/me/calls/{call_id}", "GET", "/v1/me/calls/"+callA, bUser, "", 404, "call_not_found")
	add("GET /v1/me/apns", "GET", "/v1/me/apns", bUser, "", 200, "")
	add("DELETE /v1/me/apns", "DELETE", "/v1/me/apns", bUser, fmt.Sprintf(`{"token":%q}`, tokenA), 404, "registration_not_found")
	// A's certificate ID is unknown to B: the same answer as an ID that
	// never existed.
	add("PUT /v1/me/apns", "PUT", "/v1/me/apns", bUser, fmt.Sprintf(`{"business_id":%d,"token":%q,"device_id":"x"}`, certA, strings.Repeat("ab", 32)), 400, "unknown_business_id")
	add("PUT /v1/me/apns", "PUT", "/v1/me/apns", bUser, fmt.Sprintf(`{"business_id":%d,"token":%q,"device_id":"x"}`, 99_999_999, strings.Repeat("ab", 32)), 400, "unknown_business_id")

	covered := map[string]bool{}
	markers := []string{a.SecretKey, secretDevice, secretTitle, secretRoom, secretData, "hook-of-A", "bob-phone-of-A"}
	var unknownCertMsg []string
	for _, r := range reqs {
		covered[r.route] = true
		status, body := rawDo(t, base, r.method, r.path, r.authz, r.body)
		if status != r.wantStatus || (r.wantCode != "" && !strings.Contains(body, `"code":"`+r.wantCode+`"`)) {
			t.Errorf("%s %s as %.12s…: %d %s, want %d %s", r.method, r.path, r.authz, status, strings.TrimSpace(body), r.wantStatus, r.wantCode)
		}
		for _, m := range markers {
			if strings.Contains(body, m) {
				t.Errorf("%s %s as %.12s… revealed A's %q: %s", r.method, r.path, r.authz, m, body)
			}
		}
		if r.wantCode == "unknown_business_id" {
			unknownCertMsg = append(unknownCertMsg, strings.ReplaceAll(body, fmt.Sprint(certA), "N"))
		}
	}
	if len(unknownCertMsg) == 2 && unknownCertMsg[0] != strings.ReplaceAll(unknownCertMsg[1], "99999999", "N") {
		t.Errorf("A's certificate ID and an unknown one get different answers:\n%s\n%s", unknownCertMsg[0], unknownCertMsg[1])
	}
	var missing []string
	for _, route := range apiRoutes(t) {
		if !covered[route] {
			missing = append(missing, route)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes of api.go without an isolation case: %v", missing)
	}

	// The gateway: B's alice asks about, answers and ends A's call. Every
	// answer is the one for a call that does not exist.
	conn := e.connect(t, b, "alice", "b-alice-phone", "foreground")
	ops := map[string]func(id string) (*client.Call, error){
		"get_call": func(id string) (*client.Call, error) { return conn.GetCall(ctx, id) },
		"accept":   func(id string) (*client.Call, error) { return conn.Accept(ctx, id) },
		"reject":   func(id string) (*client.Call, error) { return conn.Reject(ctx, id, "declined") },
		"cancel":   func(id string) (*client.Call, error) { return conn.Cancel(ctx, id) },
		"hangup":   func(id string) (*client.Call, error) { return conn.Hangup(ctx, id) },
		"invite_more": func(id string) (*client.Call, error) {
			return conn.InviteMore(ctx, id, []string{"carol"})
		},
	}
	for name, op := range ops {
		c, err := op(callA)
		var ce *client.Error
		if err == nil || c != nil {
			t.Errorf("gateway %s of A's call by B's alice: %+v, %v; want refused", name, c, err)
			continue
		}
		_, errNone := op("no-such-call-0000")
		var ceNone *client.Error
		if !asClientErr(err, &ce) || !asClientErr(errNone, &ceNone) || ce.Code != ceNone.Code || ce.Code != "call_not_found" {
			t.Errorf("gateway %s: A's call answered %v, a missing call %v; want the same call_not_found", name, err, errNone)
		}
		for _, m := range markers {
			if strings.Contains(err.Error(), m) {
				t.Errorf("gateway %s revealed %q: %v", name, m, err)
			}
		}
	}

	// Nothing of A changed.
	after := snapshotApp(t, e, a.App, tokenA, callA, pushIDA)
	if before != after {
		t.Errorf("app A changed:\nbefore %s\nafter  %s", before, after)
	}
}

func asClientErr(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

func sigOf(t *testing.T, app *client.App, user string) string {
	t.Helper()
	s, err := auth.GenUserSig(app.SDKAppID, app.SecretKey, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshotApp describes what app A holds, through the admin token and A's
// own UserSig (which also proves A's secret key is unchanged).
func snapshotApp(t *testing.T, e *env, app *client.App, token, callID, pushID string) string {
	t.Helper()
	ctx := ctxT(t)
	var sb strings.Builder
	certs := must[[]client.Certificate](t)(e.admin.Certificates(ctx, app.SDKAppID))
	fmt.Fprintf(&sb, "certs=%d ", len(certs))
	for _, u := range []string{"alice", "bob"} {
		devs := must[[]client.Registration](t)(e.admin.Devices(ctx, app.SDKAppID, u))
		for _, d := range devs {
			fmt.Fprintf(&sb, "%s:%s/%s/%d ", u, d.Token[:8], d.DeviceID, d.CertificateID)
		}
	}
	c := must[*client.Call](t)(e.admin.Call(ctx, app.SDKAppID, callID))
	fmt.Fprintf(&sb, "call=%s/%s/%s/%d ", c.State, c.RoomID, c.Data, len(c.Invitees))
	s := must[*client.Settings](t)(e.admin.Settings(ctx, app.SDKAppID))
	fmt.Fprintf(&sb, "hook=%s ", s.WebhookURL)
	tr := must[*client.Trace](t)(e.admin.Trace(ctx, app.SDKAppID, pushID))
	fmt.Fprintf(&sb, "push=%s ", tr.PushID)
	regs := must[[]client.Registration](t)(e.userFor(t, app, "alice").Registrations(ctx))
	fmt.Fprintf(&sb, "alice-sees=%d", len(regs))
	return sb.String()
}
