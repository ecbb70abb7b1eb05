package server_test

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
)

// tencentUserSig follows Tencent's published TLSSigAPIv2 algorithm step by
// step, independently of ringd's auth package, with default zlib
// compression and Python's key order (as tls-sig-api-v2-python emits).
func tencentUserSig(sdkAppID int64, key, user string, expire int64, now time.Time) string {
	t := now.Unix()
	content := fmt.Sprintf("TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n", user, sdkAppID, t, expire)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(content))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	doc := fmt.Sprintf(`{"TLS.ver": "2.0", "TLS.identifier": %q, "TLS.sdkappid": %d, "TLS.expire": %d, "TLS.time": %d, "TLS.sig": %q}`, user, sdkAppID, expire, t, sig)
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(doc))
	w.Close()
	s := base64.StdEncoding.EncodeToString(z.Bytes())
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(s)
}

func TestUserSigChecks(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	appA := must[*client.App](t)(e.admin.CreateApp(ctx, "a"))
	appB := must[*client.App](t)(e.admin.CreateApp(ctx, "b"))
	now := time.Now()
	gen := func(app int64, key, user string, expire time.Duration, at time.Time) string {
		s, err := auth.GenUserSig(app, key, user, expire, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := gen(appA.SDKAppID, appA.SecretKey, "alice", time.Hour, now)
	tampered := []byte(valid)
	tampered[len(tampered)/2] ^= 1
	tests := []struct {
		name, sig, code string
	}{
		{"tencent algorithm", tencentUserSig(appA.SDKAppID, appA.SecretKey, "alice", 86400, now), ""},
		{"ringd usersig", valid, ""},
		{"other app's key", gen(appA.SDKAppID, appB.SecretKey, "alice", time.Hour, now), "usersig_bad_signature"},
		{"expired", gen(appA.SDKAppID, appA.SecretKey, "alice", time.Second, now.Add(-time.Hour)), "usersig_expired"},
		{"tampered", string(tampered), "*"},
		{"unknown app", gen(1, "x", "alice", time.Hour, now), "usersig_unknown_app"},
		{"garbage", "not-a-usersig", "usersig_malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.NewUser(e.srv.URL(), tt.sig, nil).Registrations(ctx)
			switch tt.code {
			case "":
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case "*":
				if err == nil {
					t.Fatal("a tampered UserSig was accepted")
				}
			default:
				wantCode(t, err, tt.code)
			}
		})
	}
}

// TestAppIsolation: nothing of app A is reachable with app B's credentials.
func TestAppIsolation(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	appA := must[*client.App](t)(e.admin.CreateApp(ctx, "a"))
	appB := must[*client.App](t)(e.admin.CreateApp(ctx, "b"))
	certA := e.uploadP12(t, appA, "development", false)[0]
	tok := must[string](t)(e.sim.MintDevice(ctx, bundle, "development", "alert"))

	_, err := e.userFor(t, appB, "mallory").SetAPNS(ctx, client.SetAPNS{BusinessID: certA.ID, Token: tok})
	wantCode(t, err, "unknown_business_id")

	sigB, _ := auth.GenUserSig(appB.SDKAppID, appB.SecretKey, "administrator", time.Hour, time.Now())
	adminB := client.NewAppAdmin(e.srv.URL(), sigB, nil)
	_, err = adminB.Certificates(ctx, appA.SDKAppID)
	wantCode(t, err, "app_not_found")
	_, err = adminB.Send(ctx, appA.SDKAppID, client.Push{User: "alice", Title: "x"})
	wantCode(t, err, "app_not_found")
	if _, err := adminB.Certificates(ctx, appB.SDKAppID); err != nil {
		t.Fatalf("app admin of B cannot read B: %v", err)
	}
	// A plain user of B is no admin of B.
	sigUser, _ := auth.GenUserSig(appB.SDKAppID, appB.SecretKey, "bob", time.Hour, time.Now())
	_, err = client.NewAppAdmin(e.srv.URL(), sigUser, nil).Certificates(ctx, appB.SDKAppID)
	wantCode(t, err, "admin_required")
	_, err = client.NewAdmin(e.srv.URL(), "wrong-token-0123456789", nil).Apps(ctx)
	wantCode(t, err, "bad_admin_token")
}

func TestBadInput(t *testing.T) {
	e := startDev(t, "")
	ctx := ctxT(t)
	app := must[*client.App](t)(e.admin.CreateApp(ctx, "input"))
	dev := e.uploadP12(t, app, "development", false)[0]
	alice := e.userFor(t, app, "alice")
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.srv.AdminToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	pushes := fmt.Sprintf("/v1/apps/%d/pushes", app.SDKAppID)
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"empty body", "/v1/apps", "", 400, "bad_json"},
		{"unknown field", "/v1/apps", `{"name":"x","nmae":"y"}`, 400, "unknown_field"},
		{"two objects", "/v1/apps", `{"name":"x"}{"name":"y"}`, 400, "bad_json"},
		{"wrong type", "/v1/apps", `{"name":5}`, 400, "bad_json"},
		{"huge body", "/v1/apps", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "body_too_large"},
		{"no recipients", pushes, `{"title":"x"}`, 400, "bad_recipients"},
		{"both recipients", pushes, `{"user":"a","users":["b"]}`, 400, "bad_recipients"},
		{"bad user", pushes, `{"user":"` + strings.Repeat("u", 40) + `"}`, 400, "bad_user"},
		{"payload too large", pushes, `{"user":"a","body":"` + strings.Repeat("x", 5000) + `"}`, 413, "payload_too_large"},
		{"unknown app", "/v1/apps/99/pushes", `{"user":"a"}`, 404, "app_not_found"},
		{"unknown endpoint", "/v1/nothing", `{}`, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.path, tt.body)
			if status != tt.status || !strings.Contains(body, `"code":"`+tt.code+`"`) {
				t.Fatalf("got %d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	t.Run("registration refusals", func(t *testing.T) {
		_, err := alice.SetAPNS(ctx, client.SetAPNS{BusinessID: dev.ID, Token: "xyz"})
		wantCode(t, err, "bad_token")
		_, err = alice.SetAPNS(ctx, client.SetAPNS{BusinessID: 1, Token: strings.Repeat("ab", 32)})
		wantCode(t, err, "unknown_business_id")
		voip := true
		_, err = alice.SetAPNS(ctx, client.SetAPNS{BusinessID: dev.ID, Token: strings.Repeat("ab", 32), VoIP: &voip})
		wantCode(t, err, "certificate_not_voip")
		if regs := must[[]client.Registration](t)(alice.Registrations(ctx)); len(regs) != 0 {
			t.Fatalf("a refused registration left %d rows", len(regs))
		}
	})
}
