package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

func TestPipelineDelivered(t *testing.T) {
	prod, dev := newCerts()
	e := newTestEnv(t, prod, dev)
	e.register("bob", tokenA, store.KindAlert, "phone", prod, time.Now())
	e.register("bob", tokenV, store.KindVoIP, "phone", prod, time.Now())
	e.run()

	id := e.submit("bob", Request{Title: "Alice", Body: "is calling", VoIP: true, Expiration: ptr(int64(0)),
		Custom: map[string]json.RawMessage{"call_id": json.RawMessage(`"c1"`)}})
	tr := e.waitStatus(id, StatusDelivered)

	calls := e.sender.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d sends, want 1 (one per device)", len(calls))
	}
	n := calls[0].n
	if n.DeviceToken != tokenV || n.PushType != apns.PushTypeVoIP || n.Topic != "com.example.app.voip" || n.Priority != 10 {
		t.Errorf("notification %+v", n)
	}
	if n.Expiration == nil || !n.Expiration.Equal(time.Unix(0, 0)) {
		t.Errorf("expiration %v, want unix 0 (now or never)", n.Expiration)
	}
	if !strings.Contains(string(n.Payload), `"call_id":"c1"`) {
		t.Errorf("payload %s", n.Payload)
	}
	if calls[0].cred.ID != prod.ID || calls[0].cred.Environment != store.EnvProduction {
		t.Errorf("credential %+v", calls[0].cred)
	}
	if len(tr.Devices) != 1 || len(tr.Devices[0].Attempts) != 1 {
		t.Fatalf("trace %+v", tr)
	}
	d, a := tr.Devices[0], tr.Devices[0].Attempts[0]
	if d.APNsID != n.ID || a.APNsID != n.ID || d.DeviceID != "phone" || d.PushType != apns.PushTypeVoIP {
		t.Errorf("device %+v, attempt %+v, sent id %s", d, a, n.ID)
	}
	if a.Status != 200 || a.Classification != "delivered" || a.Environment != store.EnvProduction || a.CertificateID != prod.ID || a.Host != "api.push.apple.com" {
		t.Errorf("attempt %+v", a)
	}
	r, err := e.st.Registration(context.Background(), testApp, tokenV)
	if err != nil || r.LastSuccessAt.IsZero() {
		t.Errorf("registration success not recorded: %+v %v", r, err)
	}
	// The trace JSON carries the names integrations rely on.
	b, _ := json.Marshal(tr)
	for _, k := range []string{`"status":"delivered"`, `"devices":[`, `"attempts":[`, `"environment":"production"`, `"certificate_id":10001`, `"classification":"delivered"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("trace JSON lacks %s: %s", k, b)
		}
	}
}

func TestPipelineDefaultExpirationAndAlert(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.run()
	id := e.submit("bob", Request{Body: "hi", Priority: 5})
	tr := e.waitStatus(id, StatusDelivered)
	n := e.sender.Calls()[0].n
	if n.PushType != apns.PushTypeAlert || n.Topic != "com.example.app" || n.Priority != 5 {
		t.Errorf("notification %+v", n)
	}
	if n.Expiration == nil || n.Expiration.Unix() != tr.ExpiresAt.Unix() || tr.ExpiresAt.Sub(tr.CreatedAt) != DefaultTTL {
		t.Errorf("expiration %v, push %s..%s", n.Expiration, tr.CreatedAt, tr.ExpiresAt)
	}
}

func TestPipelineTokenDead(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	died := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	e.register("bob", tokenA, store.KindAlert, "old-phone", prod, died.Add(-time.Hour))  // registered before it died
	e.register("bob", tokenB, store.KindAlert, "new-phone", prod, died.Add(time.Minute)) // registered again after
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return &apns.Response{Status: 410, Reason: "Unregistered", Timestamp: died}, nil
	}
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusFailed)

	ctx := context.Background()
	if _, err := e.st.Registration(ctx, testApp, tokenA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("registration before the timestamp still there: %v", err)
	}
	if _, err := e.st.Registration(ctx, testApp, tokenB); err != nil {
		t.Errorf("registration after the timestamp removed: %v", err)
	}
	for _, d := range tr.Devices {
		a := d.Attempts[0]
		if a.Classification != "token_dead" || a.Status != 410 || d.Reason != "Unregistered" {
			t.Errorf("device %+v", d)
		}
		want := "registration is removed"
		if d.Token == tokenB {
			want = "registration is kept"
		}
		if !strings.Contains(a.Diagnosis, want) {
			t.Errorf("%s: diagnosis %q lacks %q", d.Token[:4], a.Diagnosis, want)
		}
	}
}

// badDeviceTokenOn answers BadDeviceToken on one environment and 200 on the other.
func badDeviceTokenOn(env string) func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
	return func(_ int, cred *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		if cred.Environment == env {
			return answer(400, "BadDeviceToken")
		}
		return answer(200, "")
	}
}

func TestPipelineBadDeviceTokenRetriesOtherEnvironment(t *testing.T) {
	prod, dev := newCerts()
	e := newTestEnv(t, prod, dev)
	// A Debug build's token registered with the production certificate ID.
	e.register("bob", tokenA, store.KindVoIP, "phone", prod, time.Now())
	e.sender.respond = badDeviceTokenOn(store.EnvProduction)
	e.run()
	id := e.submit("bob", Request{VoIP: true, Title: "Alice"})
	tr := e.waitStatus(id, StatusDelivered)

	as := tr.Devices[0].Attempts
	if len(as) != 2 {
		t.Fatalf("attempts %+v", as)
	}
	first, second := as[0], as[1]
	if first.Environment != store.EnvProduction || first.Reason != "BadDeviceToken" || first.Classification != "configuration" {
		t.Errorf("first attempt %+v", first)
	}
	for _, w := range []string{"bad devicetoken", "production APNs host", "Debug builds", fmt.Sprintf("certificate ID %d (development)", dev.ID)} {
		if !strings.Contains(first.Diagnosis, w) {
			t.Errorf("first diagnosis lacks %q: %s", w, first.Diagnosis)
		}
	}
	if second.Environment != store.EnvDevelopment || second.CertificateID != dev.ID || second.Status != 200 || second.Host != "api.sandbox.push.apple.com" {
		t.Errorf("second attempt %+v", second)
	}
	want := fmt.Sprintf("delivered through certificate ID %d (development); the registration now uses it", dev.ID)
	if second.Diagnosis != want {
		t.Errorf("second diagnosis %q", second.Diagnosis)
	}
	calls := e.sender.Calls()
	if len(calls) != 2 || calls[0].n.ID != calls[1].n.ID || calls[1].n.Topic != "com.example.app.voip" {
		t.Errorf("the retry must reuse the apns-id and topic: %+v", calls)
	}
	r, err := e.st.Registration(context.Background(), testApp, tokenA)
	if err != nil || r.CertificateID != dev.ID || r.Environment != store.EnvDevelopment {
		t.Errorf("registration not moved: %+v %v", r, err)
	}
}

func TestPipelineBadDeviceTokenWithoutOtherCertificate(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = badDeviceTokenOn(store.EnvProduction)
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusFailed)

	d := tr.Devices[0]
	if len(d.Attempts) != 1 || d.Reason != "BadDeviceToken" {
		t.Fatalf("device %+v", d)
	}
	for _, w := range []string{"bad devicetoken", "No development certificate", "upload one for the development environment"} {
		if !strings.Contains(d.Diagnosis, w) || !strings.Contains(tr.Diagnosis, w) {
			t.Errorf("diagnosis lacks %q:\n%s\n%s", w, d.Diagnosis, tr.Diagnosis)
		}
	}
	r, err := e.st.Registration(context.Background(), testApp, tokenA)
	if err != nil {
		t.Fatalf("BadDeviceToken deleted the token: %v", err)
	}
	if r.LastFailureReason != "BadDeviceToken" {
		t.Errorf("registration failure not recorded: %+v", r)
	}
	c, _ := e.st.Certificate(context.Background(), prod.ID)
	if !strings.HasPrefix(c.LastError, "BadDeviceToken") {
		t.Errorf("certificate error not recorded: %q", c.LastError)
	}
}

func TestPipelineBadDeviceTokenInBothEnvironments(t *testing.T) {
	prod, dev := newCerts()
	e := newTestEnv(t, prod, dev)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return answer(400, "BadDeviceToken")
	}
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusFailed)
	as := tr.Devices[0].Attempts
	if len(as) != 2 || !strings.Contains(as[1].Diagnosis, "either environment") {
		t.Fatalf("attempts %+v", as)
	}
	r, _ := e.st.Registration(context.Background(), testApp, tokenA)
	if r == nil || r.CertificateID != prod.ID {
		t.Errorf("registration changed or deleted: %+v", r)
	}
}

func TestPipelineTransientThenDelivered(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		switch i {
		case 0:
			return answer(503, "ServiceUnavailable")
		case 1:
			return nil, errors.New("connection reset")
		}
		return answer(200, "")
	}
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusDelivered)
	as := tr.Devices[0].Attempts
	if len(as) != 3 {
		t.Fatalf("attempts %+v", as)
	}
	if as[0].Status != 503 || as[0].Classification != "transient" || !strings.Contains(as[0].Diagnosis, "retrying") {
		t.Errorf("first %+v", as[0])
	}
	if as[1].Status != 0 || as[1].Reason != ReasonTransport || !strings.Contains(as[1].Diagnosis, "connection reset") {
		t.Errorf("second %+v", as[1])
	}
	if as[2].Status != 200 {
		t.Errorf("third %+v", as[2])
	}
}

func TestPipelineGivesUpAfterMaxAttempts(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.MaxAttempts = 3
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return answer(500, "InternalServerError")
	}
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusFailed)
	if n := len(e.sender.Calls()); n != 3 {
		t.Errorf("%d sends, want 3", n)
	}
	if d := tr.Devices[0]; d.Reason != "InternalServerError" || !strings.Contains(d.Diagnosis, "gave up after 3 attempts") {
		t.Errorf("device %+v", d)
	}
}

func TestPipelineExpiredNeverSent(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	id := e.submit("bob", Request{Body: "ring", Expiration: ptr(int64(0))})
	e.clock.Advance(time.Minute) // past the now-or-never window before any worker runs
	e.run()
	tr := e.waitStatus(id, StatusExpired)
	if n := len(e.sender.Calls()); n != 0 {
		t.Fatalf("expired push sent %d times", n)
	}
	d := tr.Devices[0]
	if d.State != store.DeliveryExpired || len(d.Attempts) != 0 || !strings.Contains(d.Diagnosis, "expired") {
		t.Errorf("device %+v", d)
	}
}

func TestPipelineNoDevices(t *testing.T) {
	e := newTestEnv(t)
	id := e.submit("nobody", Request{Body: "hi"})
	tr, err := e.svc.Trace(context.Background(), testApp, id)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status != StatusNoDevices || len(tr.Devices) != 0 || !strings.Contains(tr.Diagnosis, "PUT /v1/me/apns") {
		t.Errorf("trace %+v", tr)
	}
	b, _ := json.Marshal(tr)
	if !strings.Contains(string(b), `"devices":[]`) {
		t.Errorf("devices should be an empty list: %s", b)
	}
}

func TestPipelineNoAlertRegistration(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenV, store.KindVoIP, "phone", prod, time.Now())
	e.run()
	id := e.submit("bob", Request{Body: "a message"})
	tr := e.waitStatus(id, StatusFailed)
	d := tr.Devices[0]
	if d.Reason != ReasonNoAlertRegistration || d.PushType != apns.PushTypeAlert || len(d.Attempts) != 0 {
		t.Errorf("device %+v", d)
	}
	if !strings.Contains(d.Diagnosis, "not the PushKit one") {
		t.Errorf("diagnosis %q", d.Diagnosis)
	}
	if n := len(e.sender.Calls()); n != 0 {
		t.Errorf("%d sends", n)
	}
}

func TestPipelineDeletedCertificateFailsFast(t *testing.T) {
	prod, dev := newCerts()
	e := newTestEnv(t, prod, dev)
	e.register("bob", tokenA, store.KindAlert, "", dev, time.Now())
	e.svc.creds = failingCreds{}
	e.run()
	id := e.submit("bob", Request{Body: "hi"})
	tr := e.waitStatus(id, StatusFailed)
	d := tr.Devices[0]
	if d.Reason != ReasonCredential || len(d.Attempts) != 1 || d.Attempts[0].Classification != "configuration" {
		t.Fatalf("device %+v", d)
	}
	if !strings.Contains(d.Diagnosis, fmt.Sprintf("certificate ID %d cannot be used", dev.ID)) {
		t.Errorf("diagnosis %q", d.Diagnosis)
	}
	if n := len(e.sender.Calls()); n != 0 {
		t.Errorf("%d sends", n)
	}
}

type failingCreds struct{}

func (failingCreds) Credential(context.Context, int64) (*apns.Credential, *store.Certificate, error) {
	return nil, nil, fmt.Errorf("%w: certificate was deleted: %w", ErrCredentialUnusable, store.ErrNotFound)
}

func TestPipelineDeviceTokenNotForTopic(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenV, store.KindVoIP, "", prod, time.Now())
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return answer(400, "DeviceTokenNotForTopic")
	}
	e.run()
	id := e.submit("bob", Request{VoIP: true})
	tr := e.waitStatus(id, StatusFailed)
	if d := tr.Devices[0]; !strings.Contains(d.Diagnosis, "not a PushKit token for com.example.app.voip") || len(d.Attempts) != 1 {
		t.Errorf("device %+v", d)
	}
}

func TestSubmitRefusals(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	ctx := context.Background()
	tests := []struct {
		name string
		user string
		req  Request
		code string
	}{
		{"payload too large", "bob", Request{Body: strings.Repeat("x", 4100)}, CodePayloadTooLarge},
		{"voip payload too large", "bob", Request{VoIP: true, Ext: strings.Repeat("x", 5200)}, CodePayloadTooLarge},
		{"token of nobody", "bob", Request{Token: tokenB}, CodeTokenNotRegistered},
		{"past expiration", "bob", Request{Expiration: ptr(time.Now().Add(-time.Minute).Unix())}, CodeBadExpiration},
		{"empty user", "", Request{}, CodeBadUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Submit(ctx, testApp, tt.user, tt.req)
			if !errors.Is(err, &Error{Code: tt.code}) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
		})
	}
	ps, _ := e.st.Pushes(ctx, testApp, "", 10)
	if len(ps) != 0 {
		t.Errorf("refused requests stored %d pushes", len(ps))
	}
}

func TestSubmitVoIPFallbackTooLargeFailsOnlyThatDevice(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenV, store.KindVoIP, "phone", prod, time.Now())
	e.register("bob", tokenA, store.KindAlert, "ipad", prod, time.Now().Add(-time.Minute))
	e.run()
	id := e.submit("bob", Request{VoIP: true, Body: "x", Ext: strings.Repeat("x", 4500)})
	tr := e.waitStatus(id, StatusPartiallyDelivered)
	for _, d := range tr.Devices {
		if d.Token == tokenA && (d.Reason != ReasonPayloadTooLarge || !strings.Contains(d.Diagnosis, "4096")) {
			t.Errorf("alert fallback %+v", d)
		}
	}
}

func TestSubmitToken(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.register("bob", tokenB, store.KindAlert, "", prod, time.Now())
	e.run()
	id := e.submit("bob", Request{Body: "hi", Token: strings.ToUpper(tokenB)})
	tr := e.waitStatus(id, StatusDelivered)
	if len(tr.Devices) != 1 || tr.Devices[0].Token != tokenB {
		t.Errorf("devices %+v", tr.Devices)
	}
}

func TestSubmitBatchAndRecent(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	users := []string{"u1", "u2", "u3"}
	for i, u := range users {
		e.register(u, fmt.Sprintf("%064x", i+1), store.KindAlert, "", prod, time.Now())
	}
	e.run()
	ctx := context.Background()
	ids, err := e.svc.SubmitBatch(ctx, testApp, append(users, "nobody"), Request{Body: "hi"})
	if err != nil || len(ids) != 4 {
		t.Fatalf("ids %v, err %v", ids, err)
	}
	for i, u := range users {
		if tr := e.waitStatus(ids[i], StatusDelivered); tr.UserID != u {
			t.Errorf("push %d is for %s, want %s", i, tr.UserID, u)
		}
	}
	recent, err := e.svc.Recent(ctx, testApp, "u2", 10)
	if err != nil || len(recent) != 1 || recent[0].PushID != ids[1] || recent[0].Status != StatusDelivered || recent[0].Delivered != 1 {
		t.Errorf("recent %+v, %v", recent, err)
	}
	if _, err := e.svc.SubmitBatch(ctx, testApp, make([]string, MaxBatchUsers+1), Request{}); !errors.Is(err, &Error{Code: CodeTooManyUsers}) {
		t.Errorf("oversized batch: %v", err)
	}
	if _, err := e.svc.SubmitBatch(ctx, testApp, []string{"u1", "u2"}, Request{Token: tokenA}); !errors.Is(err, &Error{Code: CodeBadToken}) {
		t.Errorf("token with several users: %v", err)
	}
}

func TestTraceOfAnotherApp(t *testing.T) {
	e := newTestEnv(t)
	id := e.submit("bob", Request{})
	if _, err := e.svc.Trace(context.Background(), testApp+1, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}
