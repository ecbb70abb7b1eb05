package apns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSendHeadersExactly(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
		w.Header().Set("apns-unique-id", "0a1b2c3d-aaaa-bbbb-cccc-000000000001")
	})
	c := newTestClient(t, f, nil)
	cred := newP8Credential(t, 1)

	n := voipNotification()
	n.ID = "123e4567-e89b-12d3-a456-426614174000"
	n.CollapseID = "call-c1"
	resp := mustSend(t, c, cred, n)

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Method != "POST" || got.Path != "/3/device/"+testToken {
		t.Errorf("request line = %s %s", got.Method, got.Path)
	}
	if string(got.Body) != string(n.Payload) {
		t.Errorf("body = %q", got.Body)
	}
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "bearer ") {
		t.Errorf("authorization = %q, want bearer <jwt>", auth)
	}
	want := map[string]string{
		"Apns-Push-Type":   "voip",
		"Apns-Topic":       "com.example.app.voip",
		"Apns-Id":          n.ID,
		"Apns-Expiration":  "0",
		"Apns-Priority":    "10",
		"Apns-Collapse-Id": "call-c1",
		"Authorization":    auth,
		"Content-Type":     "application/json",
		"Content-Length":   fmt.Sprint(len(n.Payload)),
	}
	assertHeaders(t, got.Header, want)

	if resp.Status != 200 || resp.APNsID != n.ID || resp.UniqueID != "0a1b2c3d-aaaa-bbbb-cccc-000000000001" {
		t.Errorf("response = %+v", resp)
	}
	if resp.Host != f.srv.Listener.Addr().String() || resp.Latency <= 0 {
		t.Errorf("host/latency = %q %v", resp.Host, resp.Latency)
	}
	if Classify(resp.Status, resp.Reason) != ClassDelivered {
		t.Errorf("200 not delivered")
	}
}

func TestSendOmitsUnsetHeaders(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	c := newTestClient(t, f, nil)
	exp := time.Unix(1_900_000_000, 0)
	n := &Notification{DeviceToken: testToken, Topic: "com.example.app", PushType: PushTypeAlert, Payload: []byte(`{"aps":{"alert":"hi"}}`)}
	mustSend(t, c, newCertCredential(t, 2), n)
	n.Expiration = &exp
	mustSend(t, c, newCertCredential(t, 2), n)

	reqs := f.requests()
	assertHeaders(t, reqs[0].Header, map[string]string{
		"Apns-Push-Type": "alert",
		"Apns-Topic":     "com.example.app",
		"Content-Type":   "application/json",
		"Content-Length": fmt.Sprint(len(n.Payload)),
	})
	if got := reqs[1].Header.Get("Apns-Expiration"); got != "1900000000" {
		t.Errorf("apns-expiration = %q, want 1900000000 (seconds)", got)
	}
}

func assertHeaders(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("header names = %v\nwant %v", g, w)
	}
	for k, v := range want {
		if got[k] == nil || len(got[k]) != 1 || got[k][0] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestSendPresentsClientCertificate(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{requireCert: true})
	c := newTestClient(t, f, nil)
	cred := newCertCredential(t, 3)
	mustSend(t, c, cred, voipNotification())

	got := f.requests()[0]
	if got.PeerCert == nil || !got.PeerCert.Equal(cred.Certificate.Leaf) {
		t.Fatalf("server did not see the credential's certificate: %v", got.PeerCert)
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("certificate auth must not send authorization")
	}
}

func TestSendWithoutCertificateRefusedByServer(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{requireCert: true})
	c := newTestClient(t, f, nil)
	_, err := c.Send(context.Background(), newP8Credential(t, 4), voipNotification())
	if err == nil {
		t.Fatal("want an error when the server requires a certificate")
	}
}

func TestSend410Timestamp(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("apns-id", "123e4567-e89b-12d3-a456-426614174000")
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"reason":"Unregistered","timestamp":1700000000123}`)
	})
	c := newTestClient(t, f, nil)
	resp := mustSend(t, c, newP8Credential(t, 5), voipNotification())
	if resp.Status != 410 || resp.Reason != "Unregistered" {
		t.Fatalf("response = %+v", resp)
	}
	if want := time.UnixMilli(1700000000123); !resp.Timestamp.Equal(want) {
		t.Errorf("timestamp = %v, want %v", resp.Timestamp, want)
	}
	if Classify(resp.Status, resp.Reason) != ClassTokenDead {
		t.Error("410 Unregistered is not token_dead")
	}
}

func TestSendToleratesBadBodies(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		class  Class
	}{
		{"empty", 503, "", ClassTransient},
		{"not json", 500, "<html>oops</html>", ClassTransient},
		{"huge", 400, `{"reason":"` + strings.Repeat("x", 10000) + `"}`, ClassBadRequest},
		{"unknown reason 403", 403, `{"reason":"SomethingNew"}`, ClassConfiguration},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPNs(t, fakeOptions{})
			f.setAnswer(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			c := newTestClient(t, f, nil)
			resp := mustSend(t, c, newP8Credential(t, 6), voipNotification())
			if resp.Status != tc.status || len(resp.Reason) > maxReasonLen {
				t.Fatalf("response = %+v", resp)
			}
			if got := Classify(resp.Status, resp.Reason); got != tc.class {
				t.Errorf("class = %s, want %s", got, tc.class)
			}
		})
	}
}

// A request APNs never answers ends at the earlier of ctx's deadline and
// RequestTimeout, whichever of them is set, as a deadline error.
func TestSendDeadlineIsAnError(t *testing.T) {
	const short, long = 100 * time.Millisecond, time.Hour
	tests := []struct {
		name           string
		ctxTimeout     time.Duration // 0: no deadline
		requestTimeout time.Duration
	}{
		{"ctx ends first", short, long},
		{"no ctx deadline", 0, short},
		{"ctx deadline later than RequestTimeout", long, short},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPNs(t, fakeOptions{})
			f.setAnswer(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			c := newTestClient(t, f, func(cfg *Config) { cfg.RequestTimeout = tc.requestTimeout })
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			type result struct {
				resp *Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := c.Send(ctx, newP8Credential(t, int64(7+i)), voipNotification())
				done <- result{resp, err}
			}()
			select {
			case r := <-done:
				if r.resp != nil || !errors.Is(r.err, context.DeadlineExceeded) {
					t.Fatalf("Send = %v, %v; want nil, deadline exceeded", r.resp, r.err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Send did not return: no deadline bounded the request")
			}
		})
	}
}

func TestSendRefusesInvalidNotificationWithoutSending(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	c := newTestClient(t, f, nil)
	n := voipNotification()
	n.Payload = make([]byte, MaxVoIPPayload+1)
	_, err := c.Send(context.Background(), newP8Credential(t, 8), n)
	var re *RequestError
	if !errors.As(err, &re) || re.Reason != "PayloadTooLarge" {
		t.Fatalf("err = %v, want RequestError PayloadTooLarge", err)
	}
	n = voipNotification()
	n.Topic = ""
	if _, err := c.Send(context.Background(), newP8Credential(t, 8), n); !errors.As(err, &re) || re.Reason != "MissingTopic" {
		t.Fatalf("err = %v, want RequestError MissingTopic", err)
	}
	if len(f.requests()) != 0 || f.dials.Load() != 0 {
		t.Error("an invalid notification reached the server")
	}
}

func TestSendRejectsBadCredentials(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	c := newTestClient(t, f, nil)
	good := newP8Credential(t, 9)
	bad := []*Credential{
		nil,
		{ID: 1, Environment: "staging", SigningKey: good.SigningKey, KeyID: "K", TeamID: "T"},
		{ID: 1, Environment: Production},
		{ID: 1, Environment: Production, SigningKey: good.SigningKey},
	}
	for i, cred := range bad {
		if _, err := c.Send(context.Background(), cred, voipNotification()); err == nil {
			t.Errorf("credential %d: no error", i)
		}
	}
}

func TestEnvironmentSelectsHost(t *testing.T) {
	prod := newFakeAPNs(t, fakeOptions{})
	sandbox := newFakeAPNs(t, fakeOptions{})
	c := newTestClient(t, prod, func(cfg *Config) {
		cfg.SandboxURL = sandbox.srv.URL
		cfg.RootCAs.AddCert(sandbox.srv.Certificate())
	})
	cred := newP8Credential(t, 10)
	mustSend(t, c, cred, voipNotification()) // Development
	prodCred := *cred
	prodCred.Environment = Production
	mustSend(t, c, &prodCred, voipNotification())
	if len(sandbox.requests()) != 1 || len(prod.requests()) != 1 {
		t.Fatalf("sandbox saw %d, production %d; want 1 each", len(sandbox.requests()), len(prod.requests()))
	}
	if c.OpenConnections() != 2 {
		t.Errorf("open = %d, want one pool per environment", c.OpenConnections())
	}
}

func TestCloseAndForget(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Observer = obs })
	cred := newP8Credential(t, 11)
	mustSend(t, c, cred, voipNotification())
	if c.OpenConnections() != 1 {
		t.Fatalf("open = %d, want 1", c.OpenConnections())
	}

	c.Forget(cred.ID)
	checkFor(t, 5*time.Second, func() error {
		if c.OpenConnections() != 0 {
			return errNotYet
		}
		return nil
	})
	mustSend(t, c, cred, voipNotification())
	if f.dials.Load() != 2 {
		t.Errorf("dials = %d, want a new connection after Forget", f.dials.Load())
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.OpenConnections() != 0 || obs.opened.Load() != 2 || obs.closed.Load() != 2 {
		t.Errorf("after Close: open %d, opened %d, closed %d", c.OpenConnections(), obs.opened.Load(), obs.closed.Load())
	}
	if _, err := c.Send(context.Background(), cred, voipNotification()); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestReplacedCredentialGetsNewConnections(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	c := newTestClient(t, f, nil)
	old := newP8Credential(t, 12)
	mustSend(t, c, old, voipNotification())

	// Same ID, same key material, new pointers: same pool.
	same := *old
	mustSend(t, c, &same, voipNotification())
	if f.dials.Load() != 1 {
		t.Fatalf("dials = %d; an equal credential must reuse its pool", f.dials.Load())
	}
	// Same ID, new key: new pool, verified with the new key.
	renewed := newP8Credential(t, 12)
	mustSend(t, c, renewed, voipNotification())
	if f.dials.Load() != 2 {
		t.Fatalf("dials = %d, want a new connection for a new key", f.dials.Load())
	}
	last := f.requests()[2]
	verifyJWT(t, strings.TrimPrefix(last.Header.Get("Authorization"), "bearer "), renewed)
}

func TestParseEndpoint(t *testing.T) {
	for _, bad := range []string{"http://x", "https://", "https://x/path", "https://x?q=1", "://"} {
		if _, err := NewClient(Config{ProductionURL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	ep, err := parseEndpoint(ProductionURL)
	if err != nil || ep.addr != "api.push.apple.com:443" || ep.serverName != "api.push.apple.com" {
		t.Errorf("parseEndpoint(ProductionURL) = %+v, %v", ep, err)
	}
}

func TestMaskToken(t *testing.T) {
	if got := maskToken(testToken); got != "a1b2…8f90" {
		t.Errorf("maskToken = %q", got)
	}
	if got := maskToken("abc"); strings.Contains(got, "abc") {
		t.Errorf("short token leaked: %q", got)
	}
}
