package apnssim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func FuzzControlRequests(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `{"environment":"development","team_id":"ABCDE12345"}`,
		`{"bundle_id":"com.example.app","environment":"both","voip":true,"expired":true,"legacy":true}`,
		`{"bundle_id":"com.example.app","environment":"production","kind":"voip","length":64}`,
		`{"error_rate":0.2,"error_statuses":[500,503],"latency_ms":2000,"reset_rate":0.01,"goaway_after":3,"max_concurrent_streams":1,"duration_ms":10}`,
		`{"a":1} trailing`, `[1,2]`, `{"length":1e400}`, `{"error_rate":-0}`, `{"down_ms":1500}`, `{"down_ms":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := parseKeyRequest(b); err == nil {
			if !isAppleID(k.TeamID) || (k.Environment != EnvBoth && k.Environment != EnvDevelopment && k.Environment != EnvProduction) {
				t.Fatalf("accepted key request %+v", k)
			}
			roundTrip(t, k, parseKeyRequest)
		}
		if c, err := parseCertRequest(b); err == nil {
			if validateBundleID(c.BundleID) != nil {
				t.Fatalf("accepted certificate request %+v", c)
			}
			roundTrip(t, c, parseCertRequest)
		}
		if d, err := parseDeviceRequest(b); err == nil {
			if d.Length < MinTokenBytes || d.Length > MaxTokenBytes || (d.Kind != KindAlert && d.Kind != KindVoIP) {
				t.Fatalf("accepted device request %+v", d)
			}
			roundTrip(t, d, parseDeviceRequest)
		}
		if fl, err := parseFaultsRequest(b); err == nil {
			if !validRate(fl.ErrorRate) || !validRate(fl.ResetRate) || fl.LatencyMS < 0 {
				t.Fatalf("accepted faults %+v", fl)
			}
			roundTrip(t, fl, parseFaultsRequest)
		}
		if o, err := parseRestartRequest(b); err == nil {
			if o.DownMS < 0 || time.Duration(o.DownMS)*time.Millisecond > maxRestartDown {
				t.Fatalf("accepted restart %+v", o)
			}
			roundTrip(t, o, parseRestartRequest)
		}
	})
}

// roundTrip checks that what a decoder accepted, re-encoded, is accepted.
func roundTrip[T any](t *testing.T, v T, parse func([]byte) (T, error)) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %+v: %v", v, err)
	}
	if _, err := parse(b); err != nil {
		t.Fatalf("re-parse %s: %v", b, err)
	}
}

func FuzzParseProviderToken(f *testing.F) {
	sim, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer sim.Close()
	key, err := sim.IssueKey("")
	if err != nil {
		f.Fatal(err)
	}
	valid := signJWT(f, key.P8, key.KeyID, key.TeamID, time.Now().Unix())
	for _, s := range []string{valid, "", "a.b.c", "..", strings.Repeat("A", maxJWTBytes+1),
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJYIiwiaWF0IjoiMSJ9.AAAA",
		valid[:len(valid)-2], valid + "."} {
		f.Add(s)
	}
	pub := sim.keys.get(key.KeyID).Public
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseProviderToken(s)
		if err != nil {
			return
		}
		if tok.KeyID == "" || tok.Issuer == "" || len(tok.sig) != 64 || !strings.HasPrefix(s, tok.signed+".") {
			t.Fatalf("accepted %q as %+v", s, tok)
		}
		if tok.verify(pub) == nil && s != valid && tok.signed != valid[:len(tok.signed)] {
			t.Fatalf("foreign token %q verified", s)
		}
	})
}

func TestParseProviderToken(t *testing.T) {
	t.Parallel()
	sim, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	key := mustV(sim.IssueKey(""))
	tok, err := parseProviderToken(signJWT(t, key.P8, key.KeyID, key.TeamID, 1700000000))
	if err != nil || tok.KeyID != key.KeyID || tok.Issuer != key.TeamID || tok.IssuedAt != 1700000000 {
		t.Fatalf("%+v %v", tok, err)
	}
	if err := tok.verify(sim.keys.get(key.KeyID).Public); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", "a.b", "a.b.c.d",
		// iat as a string, and fractional
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJYIiwiaWF0IjoiMSJ9." + strings.Repeat("A", 86),
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJYIiwiaWF0IjoxLjV9." + strings.Repeat("A", 86),
	} {
		if _, err := parseProviderToken(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
