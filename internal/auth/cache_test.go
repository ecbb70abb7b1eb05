package auth

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// The cache answers exactly as ParseUserSig and Verify do, hit or miss.
func TestSigCacheAgreesWithParse(t *testing.T) {
	c := NewSigCache(0)
	good := refSig(t, baseParams())
	tests := []struct {
		name string
		sig  string
	}{
		{"valid", good},
		{"empty", ""},
		{"bad alphabet", "abc$"},
		{"not zlib", refBase64URL([]byte("not zlib at all"))},
		{"zip bomb", zipBomb(t)},
		{"unknown key", wrapDoc(t, `{"TLS.ver":"2.0","TLS.nope":1}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 3 { // miss, then (for the valid one) hits
				want, wantErr := ParseUserSig(tt.sig)
				got, err := c.Parse(tt.sig)
				if errText(err) != errText(wantErr) {
					t.Fatalf("round %d: err %v, want %v", round, err, wantErr)
				}
				if err != nil {
					continue
				}
				if !reflect.DeepEqual(got.UserSig, want) {
					t.Fatalf("round %d: %+v, want %+v", round, got.UserSig, want)
				}
				if err := got.Verify(sampleKey, testNow); err != nil {
					t.Fatalf("round %d: Verify: %v", round, err)
				}
			}
		})
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries, want only the valid sig's", n)
	}
}

func TestSigCacheVerify(t *testing.T) {
	sig := refSig(t, baseParams()) // valid until testNow - 60s + 24h
	expiry := testNow.Add(-time.Minute + 24*time.Hour)
	tests := []struct {
		name    string
		key     string
		now     time.Time
		want    error
		entries int // after
	}{
		{"same key, before expiry", sampleKey, testNow, nil, 1},
		{"same key, last valid second", sampleKey, expiry, nil, 1},
		{"same key, expired", sampleKey, expiry.Add(time.Second), ErrExpired, 0},
		{"rotated key", "another-secret", testNow, ErrBadSignature, 1},
		{"empty key", "", testNow, ErrEmptyKey, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewSigCache(0)
			first, err := c.Parse(sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Verify(sampleKey, testNow); err != nil {
				t.Fatalf("first verify: %v", err)
			}
			tk, err := c.Parse(sig)
			if err != nil {
				t.Fatal(err)
			}
			if !tk.hit {
				t.Fatal("a verified sig was not remembered")
			}
			err = tk.Verify(tt.key, tt.now)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if want, wantErr := ParseUserSig(sig); wantErr == nil {
				if plain := want.Verify(tt.key, tt.now); errText(plain) != errText(err) {
					t.Fatalf("cached answer %v, uncached %v", err, plain)
				}
			}
			if n := c.Len(); n != tt.entries {
				t.Fatalf("%d entries, want %d", n, tt.entries)
			}
		})
	}
}

// Only verified sigs are remembered: a forged or expired one is checked
// in full every time and takes no room.
func TestSigCacheKeepsOnlyVerified(t *testing.T) {
	c := NewSigCache(0)
	p := baseParams()
	p.time, p.expire = testNow.Unix()-7200, 3600
	expired := refSig(t, p)
	forged := refSig(t, refParams{appID: sampleAppID, key: "not-the-key", user: "mallory",
		time: testNow.Unix(), expire: 3600, level: p.level, style: p.style})
	for _, sig := range []string{expired, forged} {
		for range 2 {
			tk, err := c.Parse(sig)
			if err != nil {
				t.Fatal(err)
			}
			if tk.hit {
				t.Fatal("an unverified sig was served from the cache")
			}
			if err := tk.Verify(sampleKey, testNow); err == nil {
				t.Fatal("verified")
			}
		}
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries", n)
	}
}

func TestSigCacheBoundedAndForget(t *testing.T) {
	c := NewSigCache(3)
	for i := range 10 {
		p := baseParams()
		p.user = fmt.Sprintf("u%d", i)
		tk, err := c.Parse(refSig(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Verify(sampleKey, testNow); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 3 {
			t.Fatalf("%d entries, bound 3", n)
		}
	}
	c.Forget()
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries after Forget", n)
	}
}

// A caller that modifies its Ticket does not change what the cache holds.
func TestSigCacheHandsOutCopies(t *testing.T) {
	c := NewSigCache(0)
	sig := refSig(t, baseParams())
	tk, _ := c.Parse(sig)
	if err := tk.Verify(sampleKey, testNow); err != nil {
		t.Fatal(err)
	}
	tk.Identifier, tk.Sig[0], tk.Expire = "eve", tk.Sig[0]^0xff, 1<<40
	again, _ := c.Parse(sig)
	want, _ := ParseUserSig(sig)
	if !reflect.DeepEqual(again.UserSig, want) {
		t.Fatalf("cache changed through a ticket: %+v", again.UserSig)
	}
	again.Sig[1] ^= 0xff
	third, _ := c.Parse(sig)
	if !reflect.DeepEqual(third.UserSig, want) {
		t.Fatalf("cache changed through a hit's ticket: %+v", third.UserSig)
	}
}

// FuzzSigCacheParse: the cache's parser (with recycled zlib readers)
// accepts and refuses exactly what ParseUserSig does.
func FuzzSigCacheParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	c := NewSigCache(16)
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := ParseUserSig(s)
		got, err := c.Parse(s)
		if errText(err) != errText(wantErr) {
			t.Fatalf("err %v, want %v", err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got.UserSig, want) {
			t.Fatalf("%+v, want %+v", got.UserSig, want)
		}
	})
}

// BenchmarkVerifyCached is a reconnect: the sig verified before.
func BenchmarkVerifyCached(b *testing.B) {
	c := NewSigCache(0)
	sig := refSig(b, baseParams())
	tk, _ := c.Parse(sig)
	if err := tk.Verify(sampleKey, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tk, err := c.Parse(sig)
		if err != nil {
			b.Fatal(err)
		}
		if err := tk.Verify(sampleKey, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCacheMiss is a first connection: parsed with a recycled
// zlib reader, verified, remembered.
func BenchmarkVerifyCacheMiss(b *testing.B) {
	sig := refSig(b, baseParams())
	c := NewSigCache(0)
	b.ReportAllocs()
	for b.Loop() {
		c.Forget()
		tk, err := c.Parse(sig)
		if err != nil {
			b.Fatal(err)
		}
		if err := tk.Verify(sampleKey, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
