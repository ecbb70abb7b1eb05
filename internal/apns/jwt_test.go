package apns

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifyJWT checks an ES256 provider token against cred's public key and
// returns its claims.
func verifyJWT(t testing.TB, jwt string, cred *Credential) jwtClaims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("jwt %q has %d parts", jwt, len(parts))
	}
	dec := base64.RawURLEncoding
	var hdr map[string]any
	var claims jwtClaims
	h, err1 := dec.DecodeString(parts[0])
	c, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("jwt not base64url without padding: %v %v %v", err1, err2, err3)
	}
	if err := json.Unmarshal(h, &hdr); err != nil || len(hdr) != 2 || hdr["alg"] != "ES256" || hdr["kid"] != cred.KeyID {
		t.Fatalf("header = %s", h)
	}
	var raw map[string]any
	if err := json.Unmarshal(c, &raw); err != nil || len(raw) != 2 {
		t.Fatalf("claims = %s", c)
	}
	if err := json.Unmarshal(c, &claims); err != nil || claims.Iss != cred.TeamID {
		t.Fatalf("claims = %s", c)
	}
	if len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want raw r||s of 64", len(sig))
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&cred.SigningKey.PublicKey, digest[:], r, s) {
		t.Fatal("signature does not verify with the public key")
	}
	return claims
}

func bearerOf(r seenRequest) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "bearer ")
}

func TestJWTReusedThenRefreshed(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	clock := newTestClock()
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Now = clock.Now; cfg.Observer = obs })
	cred := newP8Credential(t, 1)

	for range 3 {
		mustSend(t, c, cred, voipNotification())
	}
	reqs := f.requests()
	first := bearerOf(reqs[0])
	claims := verifyJWT(t, first, cred)
	if d := time.Since(time.Unix(claims.Iat, 0)); d < -time.Second || d > time.Minute {
		t.Errorf("iat %d is not now", claims.Iat)
	}
	for _, r := range reqs[1:] {
		if bearerOf(r) != first {
			t.Fatal("the JWT changed between requests on one connection")
		}
	}
	if obs.jwts.Load() != 1 {
		t.Errorf("JWTs issued = %d, want 1", obs.jwts.Load())
	}

	clock.Advance(49 * time.Minute)
	mustSend(t, c, cred, voipNotification())
	if got := bearerOf(f.requests()[3]); got != first {
		t.Error("JWT replaced before TokenRefresh")
	}
	clock.Advance(time.Minute)
	mustSend(t, c, cred, voipNotification())
	second := bearerOf(f.requests()[4])
	if second == first {
		t.Fatal("JWT not replaced after TokenRefresh")
	}
	if got := verifyJWT(t, second, cred); got.Iat != clock.Now().Unix() && got.Iat != clock.Now().Unix()-1 {
		t.Errorf("refreshed iat = %d, want the injected now %d", got.Iat, clock.Now().Unix())
	}
	if obs.jwts.Load() != 2 || f.dials.Load() != 1 {
		t.Errorf("jwts %d dials %d, want 2 and 1", obs.jwts.Load(), f.dials.Load())
	}
}

func TestTokenRefreshNeverBelow20Minutes(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	clock := newTestClock()
	c := newTestClient(t, f, func(cfg *Config) { cfg.Now = clock.Now; cfg.TokenRefresh = time.Minute })
	cred := newP8Credential(t, 1)
	mustSend(t, c, cred, voipNotification())
	clock.Advance(19 * time.Minute)
	mustSend(t, c, cred, voipNotification())
	clock.Advance(time.Minute)
	mustSend(t, c, cred, voipNotification())
	r := f.requests()
	if bearerOf(r[0]) != bearerOf(r[1]) {
		t.Error("a 1-minute TokenRefresh was honoured: tokens replaced within 20 minutes")
	}
	if bearerOf(r[1]) == bearerOf(r[2]) {
		t.Error("token not replaced at 20 minutes")
	}
}

func TestClampTokenRefresh(t *testing.T) {
	cases := map[time.Duration]time.Duration{
		0: DefaultTokenRefresh, time.Second: MinTokenRefresh, 30 * time.Minute: 30 * time.Minute,
		2 * time.Hour: MaxTokenRefresh,
	}
	for in, want := range cases {
		if got := clampTokenRefresh(in); got != want {
			t.Errorf("clamp(%v) = %v, want %v", in, got, want)
		}
	}
}

// expireFirstToken answers 403 ExpiredProviderToken to the first token it
// sees and 200 to any other.
func expireFirstToken() func(w http.ResponseWriter, r *http.Request) {
	var mu sync.Mutex
	var first string
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auth := r.Header.Get("Authorization")
		if first == "" {
			first = auth
		}
		if auth == first {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"reason":"ExpiredProviderToken"}`)
		}
	}
}

func TestExpiredProviderTokenSignsFreshToken(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	clock := newTestClock()
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Now = clock.Now; cfg.Observer = obs })
	cred := newP8Credential(t, 1)
	mustSend(t, c, cred, voipNotification())

	// 30 minutes later (before TokenRefresh) APNs calls the token expired.
	f.setAnswer(expireFirstToken())
	clock.Advance(30 * time.Minute)
	resp := mustSend(t, c, cred, voipNotification())
	if resp.Status != 200 {
		t.Fatalf("status = %d; Send must retry once with a fresh token", resp.Status)
	}
	r := f.requests()
	if len(r) != 3 || bearerOf(r[1]) != bearerOf(r[0]) || bearerOf(r[2]) == bearerOf(r[1]) {
		t.Fatal("the retry did not carry a fresh token")
	}
	verifyJWT(t, bearerOf(r[2]), cred)
	if obs.jwts.Load() != 2 || f.dials.Load() != 1 {
		t.Errorf("jwts %d dials %d; want a fresh token on the same connection", obs.jwts.Load(), f.dials.Load())
	}
}

func TestExpiredYoungTokenReplacesConnection(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	f.setAnswer(expireFirstToken())
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Observer = obs })
	cred := newP8Credential(t, 1)

	// A token just signed cannot really be expired (clock skew): signing
	// again on this connection would risk TooManyProviderTokenUpdates, so
	// the connection is replaced, as Pushy does.
	resp := mustSend(t, c, cred, voipNotification())
	if resp.Status != 200 {
		t.Fatalf("status = %d, want 200 after the retry", resp.Status)
	}
	r := f.requests()
	if len(r) != 2 || bearerOf(r[0]) == bearerOf(r[1]) || r[0].Remote == r[1].Remote {
		t.Fatalf("want the retry on a new connection with a new token: %v / %v", r[0].Remote, r[1].Remote)
	}
	checkFor(t, 5*time.Second, func() error {
		if c.OpenConnections() != 1 {
			return errNotYet
		}
		return nil
	})
}

func TestSignJWTRejectsOtherCurves(t *testing.T) {
	if _, err := signJWT(nil, "k", "t", time.Now()); err == nil {
		t.Error("nil key accepted")
	}
}

func BenchmarkJWTHeader(b *testing.B) {
	cred := newP8Credential(b, 1)
	ts := &tokenSource{key: cred.SigningKey, keyID: cred.KeyID, teamID: cred.TeamID, refresh: DefaultTokenRefresh, now: time.Now}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.token(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTSign(b *testing.B) {
	cred := newP8Credential(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signJWT(cred.SigningKey, cred.KeyID, cred.TeamID, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
