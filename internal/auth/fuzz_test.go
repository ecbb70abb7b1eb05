package auth

import (
	"compress/zlib"
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzParseUserSig: ParseUserSig never panics, fails only with ErrMalformed,
// and anything it accepts verifies the same way twice and survives
// re-encoding unchanged.
func FuzzParseUserSig(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUserSig(s)
		if err != nil {
			if u != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseUserSig = %v, %v", u, err)
			}
			return
		}
		checkParsed(t, u)
	})
}

func checkParsed(t *testing.T, u *UserSig) {
	e1 := u.Verify(sampleKey, testNow)
	e2 := u.Verify(sampleKey, testNow)
	if errText(e1) != errText(e2) {
		t.Fatalf("Verify not deterministic: %v then %v", e1, e2)
	}
	if e1 != nil && !errors.Is(e1, ErrExpired) && !errors.Is(e1, ErrBadSignature) {
		t.Fatalf("Verify = %v", e1)
	}
	if err := checkIdentifier(u.Identifier); err != nil || len(u.Sig) != 32 {
		t.Fatalf("accepted %+v: %v", u, err)
	}
	enc, err := u.encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	again, err := ParseUserSig(enc)
	if err != nil {
		t.Fatalf("re-encoded sig does not parse: %v", err)
	}
	if !reflect.DeepEqual(u, again) {
		t.Fatalf("round trip changed %+v into %+v", u, again)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func fuzzSeeds(tb testing.TB) []string {
	p := baseParams()
	stored := p
	stored.level, stored.style = zlib.NoCompression, goStyle
	withBuf := p
	withBuf.userBuf = []byte{0, 0, 1, 'a', 1, 2, 3, 4}
	expired := p
	expired.time = testNow.Add(-48 * time.Hour).Unix()
	valid := refSig(tb, p)
	gen, err := GenUserSig(1, "2", "3", 4*time.Second, testNow)
	if err != nil {
		tb.Fatal(err)
	}
	return []string{
		valid, refSig(tb, stored), refSig(tb, withBuf), refSig(tb, expired), gen,
		valid[:len(valid)/2], valid + "A", "", "eJw_", "eJyrrgUAAXUA-Q__",
		wrapDoc(tb, `{"TLS.ver":"2.0","TLS.sdkappid":"1"}`),
		wrapDoc(tb, `{"TLS.ver":"2.0","TLS.identifier":"a","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`),
	}
}

// The seeds run as a plain test too, so `go test` checks them every time.
func TestFuzzSeedsParseOrFailCleanly(t *testing.T) {
	parsed := 0
	for _, s := range fuzzSeeds(t) {
		u, err := ParseUserSig(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseUserSig(%q) = %v", s, err)
			}
			continue
		}
		parsed++
		checkParsed(t, u)
	}
	if parsed < 6 {
		t.Errorf("only %d seeds parsed; the valid seeds are broken", parsed)
	}
}
