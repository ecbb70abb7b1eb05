package auth

import (
	"bytes"
	"compress/zlib"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

func baseParams() refParams {
	return refParams{
		appID: sampleAppID, key: sampleKey, user: "alice",
		time: testNow.Unix() - 60, expire: 86400,
		level: zlib.DefaultCompression, style: pythonStyle,
	}
}

func TestParseAcceptsTencentForms(t *testing.T) {
	userBuf := []byte{0, 0, 5, 'a', 'l', 'i', 'c', 'e', 0x53, 0x72, 0x4a, 0x00, 0, 0, 0x27, 0x10}
	tests := []struct {
		name    string
		level   int
		style   jsonStyle
		user    string
		userBuf []byte
	}{
		{"go stored", zlib.NoCompression, goStyle, "alice", nil},
		{"python compressed", zlib.DefaultCompression, pythonStyle, "alice", nil},
		{"best compression", zlib.BestCompression, goStyle, "alice", nil},
		{"other key order", zlib.DefaultCompression, shuffledStyle, "alice", nil},
		{"userbuf go stored", zlib.NoCompression, goStyle, "alice", userBuf},
		{"userbuf python", zlib.DefaultCompression, pythonStyle, "alice", userBuf},
		{"printable ascii id", zlib.DefaultCompression, pythonStyle, `a b@c.d"\~`, nil},
		{"32 byte id", zlib.NoCompression, goStyle, strings.Repeat("x", 32), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParams()
			p.level, p.style, p.user, p.userBuf = tt.level, tt.style, tt.user, tt.userBuf
			u, err := ParseUserSig(refSig(t, p))
			if err != nil {
				t.Fatalf("ParseUserSig: %v", err)
			}
			if u.SDKAppID != p.appID || u.Identifier != p.user || u.Time != p.time || u.Expire != p.expire {
				t.Errorf("parsed %+v, want app %d id %q time %d expire %d", u, p.appID, p.user, p.time, p.expire)
			}
			if !bytes.Equal(u.UserBuf, tt.userBuf) || (tt.userBuf == nil) != (u.UserBuf == nil) {
				t.Errorf("UserBuf = %x, want %x", u.UserBuf, tt.userBuf)
			}
			if err := u.Verify(sampleKey, testNow); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// GenUserSig must produce exactly what Tencent's Go library produces:
// stored zlib, json.Encoder layout with its trailing newline.
func TestGenUserSigMatchesTencentGoBytes(t *testing.T) {
	got, err := GenUserSig(sampleAppID, sampleKey, "alice", 180*24*time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	p := refParams{
		appID: sampleAppID, key: sampleKey, user: "alice",
		time: testNow.Unix(), expire: 180 * 86400,
		level: zlib.NoCompression, style: goStyle,
	}
	if want := refSig(t, p); got != want {
		t.Errorf("GenUserSig =\n%s\nwant\n%s", got, want)
	}
}

// Mirrors tencentyun/TLSSigAPI_test.go TestGenAndVerify: app 1, key "2",
// user "3", expire 4 s.
func TestTencentGoTestParameters(t *testing.T) {
	sig, err := GenUserSig(1, "2", "3", 4*time.Second, testNow)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseUserSig(sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Verify("2", testNow); err != nil {
		t.Errorf("Verify now: %v", err)
	}
	if err := u.Verify("2", testNow.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify +1h = %v, want ErrExpired", err)
	}
	if err := u.Verify("3", testNow); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify other key = %v, want ErrBadSignature", err)
	}
	if u.SDKAppID != 1 || u.Identifier != "3" {
		t.Errorf("parsed app %d id %q", u.SDKAppID, u.Identifier)
	}
}

func TestVerify(t *testing.T) {
	p := baseParams()
	exp := time.Unix(p.time+p.expire, 0)
	tests := []struct {
		name   string
		params func(*refParams)
		key    string
		now    time.Time
		want   error
	}{
		{"valid", nil, sampleKey, testNow, nil},
		{"last valid second", nil, sampleKey, exp.Add(999 * time.Millisecond), nil},
		{"expired", nil, sampleKey, exp.Add(time.Second), ErrExpired},
		{"other app's key", nil, "another-apps-secret", testNow, ErrBadSignature},
		{"empty key", nil, "", testNow, ErrEmptyKey},
		{"tampered signature", func(p *refParams) { p.sigText = flipFirstChar(refHMAC(*p)) }, sampleKey, testNow, ErrBadSignature},
		{"identifier swapped", func(p *refParams) { p.sigText = refHMAC(*p); p.user = "mallory" }, sampleKey, testNow, ErrBadSignature},
		{"expire extended", func(p *refParams) { p.sigText = refHMAC(*p); p.expire *= 10 }, sampleKey, testNow, ErrBadSignature},
		{"userbuf added", func(p *refParams) { p.sigText = refHMAC(*p); p.userBuf = []byte{1} }, sampleKey, testNow, ErrBadSignature},
		{"signed for another app", func(p *refParams) { p.sigText = refHMAC(*p); p.appID++ }, sampleKey, testNow, ErrBadSignature},
		// A forged sig must not learn that it merely expired.
		{"forged and expired", func(p *refParams) { p.sigText = flipFirstChar(refHMAC(*p)) }, sampleKey, exp.Add(time.Hour), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParams()
			if tt.params != nil {
				tt.params(&p)
			}
			u, err := ParseUserSig(refSig(t, p))
			if err != nil {
				t.Fatalf("ParseUserSig: %v", err)
			}
			err = u.Verify(tt.key, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrMalformed, ErrExpired, ErrBadSignature, ErrEmptyKey} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Verify = %v, also matches %v", err, other)
				}
			}
		})
	}
}

func flipFirstChar(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestParseMalformed(t *testing.T) {
	valid := refSig(t, baseParams())
	validRaw, err := sigEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	hmacText := refHMAC(baseParams())
	doc := func(members string) string { return wrapDoc(t, "{"+members+"}") }
	good := `"TLS.ver":"2.0","TLS.identifier":"alice","TLS.sdkappid":1400000000,"TLS.expire":86400,"TLS.time":1767225540,"TLS.sig":"` + hmacText + `"`
	replace := func(old, new string) string { return doc(strings.Replace(good, old, new, 1)) }

	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "empty"},
		{"too long", strings.Repeat("A", MaxUserSigLen+4), "longer than"},
		{"standard base64 alphabet", strings.ReplaceAll(strings.ReplaceAll(valid, "*", "+"), "_", "="), "invalid character"},
		{"newline inside", valid[:10] + "\n" + valid[10:], "invalid character"},
		{"trailing space", valid + " ", "invalid character"},
		{"truncated base64", valid[:len(valid)-1], "base64"},
		{"not zlib", refBase64URL([]byte(good)), "inflate"},
		{"truncated zlib", refBase64URL(validRaw[:len(validRaw)-6]), "inflate"},
		{"bad checksum", refBase64URL(append(append([]byte{}, validRaw[:len(validRaw)-1]...), validRaw[len(validRaw)-1]^1)), "checksum"},
		{"bytes after zlib", refBase64URL(append(append([]byte{}, validRaw...), 0)), "after the zlib stream"},
		{"zip bomb", zipBomb(t), "inflates past"},
		{"not json", wrapDoc(t, "TLS.ver:2.0"), "json"},
		{"json array", wrapDoc(t, "[1,2]"), "json"},
		{"trailing json", wrapDoc(t, "{"+good+"}{}"), "after the JSON object"},
		{"wrong ver", replace(`"2.0"`, `"3.0"`), "TLS.ver"},
		{"ver as number", replace(`"2.0"`, `2.0`), "TLS.ver"},
		{"missing ver", replace(`"TLS.ver":"2.0",`, ``), "TLS.ver"},
		{"missing sig", doc(strings.Split(good, `,"TLS.sig"`)[0]), "TLS.sig is missing"},
		{"null time", replace(`1767225540`, `null`), "TLS.time is missing or null"},
		{"sdkappid as string", replace(`1400000000`, `"1400000000"`), "TLS.sdkappid"},
		{"time as string", replace(`1767225540`, `"1767225540"`), "TLS.time"},
		{"expire as float", replace(`86400`, `86400.5`), "TLS.expire"},
		{"expire in exponent form", replace(`86400`, `8.64e4`), "TLS.expire"},
		{"sdkappid overflows", replace(`1400000000`, `99999999999999999999`), "TLS.sdkappid"},
		{"negative sdkappid", replace(`1400000000`, `-1`), "not positive"},
		{"zero expire", replace(`86400`, `0`), "must be positive"},
		{"time+expire overflows", replace(`86400`, `9223372036854775807`), "overflows"},
		{"identifier as number", replace(`"alice"`, `7`), "TLS.identifier"},
		{"empty identifier", replace(`"alice"`, `""`), "identifier must be"},
		{"33 byte identifier", replace(`"alice"`, `"`+strings.Repeat("a", 33)+`"`), "identifier must be"},
		{"non-ascii identifier", replace(`"alice"`, `"al\u00efce"`), "not printable ASCII"},
		{"control char identifier", replace(`"alice"`, `"al\tce"`), "not printable ASCII"},
		{"unknown key", doc(good + `,"TLS.extra":1`), "unknown key"},
		{"key in other case", replace(`"TLS.ver"`, `"tls.VER"`), "unknown key"},
		{"duplicate key", doc(good + `,"TLS.time":1767225541`), "duplicate key"},
		{"sig not base64", replace(hmacText, "!!!!"), "TLS.sig"},
		{"sig wrong length", replace(hmacText, "AAAA"), "TLS.sig is 3 bytes"},
		{"sig non-canonical", replace(hmacText, hmacText[:8]+`\n`+hmacText[8:]), "not canonical"},
		{"empty userbuf", doc(good + `,"TLS.userbuf":""`), "userbuf"},
		{"null userbuf", doc(good + `,"TLS.userbuf":null`), "userbuf"},
		{"huge userbuf", doc(good + `,"TLS.userbuf":"` + strings.Repeat("AAAA", 400) + `"`), "userbuf longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUserSig(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseUserSig = %+v, %v; want ErrMalformed", u, err)
			}
			if errors.Is(err, ErrExpired) || errors.Is(err, ErrBadSignature) {
				t.Errorf("error %v also matches another sentinel", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
		})
	}
}

// zipBomb is a valid-looking UserSig that inflates to 2 MiB.
func zipBomb(t testing.TB) string {
	t.Helper()
	payload := append([]byte(`{"TLS.ver":"2.0","TLS.identifier":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	s := refBase64URL(refCompress(t, payload, zlib.BestCompression))
	if len(s) > MaxUserSigLen {
		t.Fatalf("bomb is %d bytes, over the input limit", len(s))
	}
	return s
}

// The bomb must cost the inflate window and maxDocLen, not its 2 MiB.
func TestZipBombDoesNotAllocate(t *testing.T) {
	bomb := zipBomb(t)
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := ParseUserSig(bomb); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseUserSig(bomb) = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	if perRun > 256<<10 {
		t.Errorf("parsing a zip bomb allocated %d bytes per run", perRun)
	}
	t.Logf("%d bytes allocated per rejected bomb", perRun)
}

func TestGenUserSigRejects(t *testing.T) {
	tests := []struct {
		name   string
		appID  int64
		key    string
		user   string
		expire time.Duration
		want   error
	}{
		{"empty key", 1, "", "alice", time.Hour, ErrEmptyKey},
		{"zero app", 0, "k", "alice", time.Hour, nil},
		{"empty user", 1, "k", "", time.Hour, nil},
		{"long user", 1, "k", strings.Repeat("a", 33), time.Hour, nil},
		{"non-ascii user", 1, "k", "ålice", time.Hour, nil},
		{"sub-second expire", 1, "k", "alice", time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := GenUserSig(tt.appID, tt.key, tt.user, tt.expire, testNow)
			if err == nil {
				t.Fatalf("GenUserSig = %q, want an error", s)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("GenUserSig error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGenUserSigRoundTrip(t *testing.T) {
	s, err := GenUserSig(sampleAppID, sampleKey, "bob", 24*time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseUserSig(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Verify(sampleKey, testNow.Add(23*time.Hour)); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if want := testNow.Add(24 * time.Hour); !u.ExpiresAt().Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", u.ExpiresAt(), want)
	}
	if u.UserBuf != nil {
		t.Errorf("UserBuf = %x, want nil", u.UserBuf)
	}
}

func TestLogValueOmitsSignature(t *testing.T) {
	var buf bytes.Buffer
	u := &UserSig{SDKAppID: 7, Identifier: "alice", Time: 1, Expire: 2, Sig: []byte("SECRETSIGBYTES")}
	slog.New(slog.NewTextHandler(&buf, nil)).Info("auth", "usersig", u)
	if out := buf.String(); strings.Contains(out, "SECRET") || !strings.Contains(out, "identifier=alice") {
		t.Errorf("log line %q", out)
	}
}

func BenchmarkParseAndVerify(b *testing.B) {
	sig := refSig(b, baseParams())
	b.ReportAllocs()
	for b.Loop() {
		u, err := ParseUserSig(sig)
		if err != nil {
			b.Fatal(err)
		}
		if err := u.Verify(sampleKey, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseZipBomb(b *testing.B) {
	bomb := zipBomb(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUserSig(bomb); err == nil {
			b.Fatal("bomb accepted")
		}
	}
}
