package auth

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// This file is an independent implementation of Tencent's published
// TLSSigAPIv2 algorithm (reference/tencent.md §5.6), written from the spec
// and sharing no code with the package, so that each checks the other.

// Published sample app from tencentyun/tls-sig-api-v2-python TLSSigAPIv2.py
// main(); Tencent's own Go test (tencentyun/TLSSigAPI_test.go) uses the
// tiny app sdkappid=1, key="2", user "3", expire 4 s.
const (
	sampleAppID = 1400000000
	sampleKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
)

type jsonStyle int

const (
	goStyle       jsonStyle = iota // Go json.Encoder: compact, trailing "\n"
	pythonStyle                    // json.dumps: ", " and ": ", no newline
	shuffledStyle                  // another key order (e.g. a HashMap-based generator)
)

type refParams struct {
	appID      int64
	key, user  string
	time       int64
	expire     int64
	userBuf    []byte
	level      int       // zlib level
	style      jsonStyle // JSON layout
	sigText    string    // when set, replaces the computed TLS.sig text
	extraField string    // when set, appended as a raw JSON member
}

func refContent(p refParams) string {
	s := "TLS.identifier:" + p.user + "\n" +
		"TLS.sdkappid:" + strconv.FormatInt(p.appID, 10) + "\n" +
		"TLS.time:" + strconv.FormatInt(p.time, 10) + "\n" +
		"TLS.expire:" + strconv.FormatInt(p.expire, 10) + "\n"
	if p.userBuf != nil {
		s += "TLS.userbuf:" + base64.StdEncoding.EncodeToString(p.userBuf) + "\n"
	}
	return s
}

func refHMAC(p refParams) string {
	m := hmac.New(sha256.New, []byte(p.key))
	m.Write([]byte(refContent(p)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// refJSON lays the document out as the named generator would. Identifiers
// in these tests are printable ASCII without <>&, where strconv.Quote and
// every JSON encoder agree.
func refJSON(p refParams) string {
	sig := p.sigText
	if sig == "" {
		sig = refHMAC(p)
	}
	members := [][2]string{
		{"TLS.ver", `"2.0"`},
		{"TLS.identifier", strconv.Quote(p.user)},
		{"TLS.sdkappid", strconv.FormatInt(p.appID, 10)},
		{"TLS.expire", strconv.FormatInt(p.expire, 10)},
		{"TLS.time", strconv.FormatInt(p.time, 10)},
	}
	if p.userBuf != nil {
		members = append(members, [2]string{"TLS.userbuf", strconv.Quote(base64.StdEncoding.EncodeToString(p.userBuf))})
	}
	members = append(members, [2]string{"TLS.sig", strconv.Quote(sig)})
	return layout(members, p.style, p.extraField)
}

func layout(members [][2]string, style jsonStyle, extra string) string {
	sep, colon, tail := ",", ":", "\n"
	if style != goStyle {
		sep, colon, tail = ", ", ": ", ""
	}
	if style == shuffledStyle {
		for i, j := 0, len(members)-1; i < j; i, j = i+1, j-1 {
			members[i], members[j] = members[j], members[i]
		}
	}
	parts := make([]string, 0, len(members)+1)
	for _, m := range members {
		parts = append(parts, strconv.Quote(m[0])+colon+m[1])
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return "{" + strings.Join(parts, sep) + "}" + tail
}

func refCompress(t testing.TB, doc []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(doc); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func refBase64URL(b []byte) string {
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(b))
}

func refSig(t testing.TB, p refParams) string {
	t.Helper()
	return refBase64URL(refCompress(t, []byte(refJSON(p)), p.level))
}

// wrapDoc encodes an arbitrary JSON document as a UserSig.
func wrapDoc(t testing.TB, doc string) string {
	t.Helper()
	return refBase64URL(refCompress(t, []byte(doc), zlib.DefaultCompression))
}
