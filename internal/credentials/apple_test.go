package credentials

import (
	"encoding/asn1"
	"errors"
	"slices"
	"testing"
)

func TestReadCertInfo(t *testing.T) {
	const b = "com.example.App"
	noUID := universalSpec(b)
	noUID.uid = ""
	voipNoTopics := voipSpec(b)
	voipNoTopics.topics = nil
	reordered := universalSpec(b)
	reordered.topics = []string{b + ".voip", b, b + ".voip"}
	otherFirst := universalSpec(b)
	otherFirst.topics = []string{b + ".complication"}
	badTopics := universalSpec(b)
	badTopics.rawTopics = []byte{0x30, 0x05, 0x0c}
	noBundle := certSpec{cn: "Some Push", dev: true}

	tests := []struct {
		name       string
		spec       certSpec
		wantErr    error // nil = success; ErrNotPushCertificate or errAny
		dev, prod  bool
		voip       bool
		wantTopics []string
	}{
		{name: "development only", spec: devSpec(b), dev: true, wantTopics: []string{b}},
		{name: "production only", spec: prodSpec(b), prod: true, wantTopics: []string{b}},
		{name: "universal", spec: universalSpec(b), dev: true, prod: true, voip: true,
			wantTopics: []string{b, b + ".voip", b + ".complication"}},
		{name: "voip services", spec: voipSpec(b), dev: true, prod: true, voip: true,
			wantTopics: []string{b, b + ".voip"}},
		{name: "voip services without topics", spec: voipNoTopics, dev: true, prod: true, voip: true,
			wantTopics: []string{b, b + ".voip"}},
		{name: "bundle from CN when no UID", spec: noUID, dev: true, prod: true, voip: true,
			wantTopics: []string{b, b + ".voip", b + ".complication"}},
		{name: "bundle moved first, duplicates dropped", spec: reordered, dev: true, prod: true, voip: true,
			wantTopics: []string{b, b + ".voip"}},
		{name: "bundle added when not listed", spec: otherFirst, dev: true, prod: true,
			wantTopics: []string{b, b + ".complication"}},
		{name: "plain certificate", spec: certSpec{cn: "example.com", uid: b}, wantErr: ErrNotPushCertificate},
		{name: "push extension without bundle", spec: noBundle, wantErr: ErrNotPushCertificate},
		{name: "malformed topics", spec: badTopics, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := makeCert(t, tc.spec, testLeafKey().Public())
			info, err := ReadCertInfo(c)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.BundleID != b || info.Development != tc.dev || info.Production != tc.prod || info.VoIP != tc.voip {
				t.Errorf("info = %+v", info)
			}
			if !slices.Equal(info.Topics, tc.wantTopics) {
				t.Errorf("topics = %q, want %q", info.Topics, tc.wantTopics)
			}
			if !info.NotAfter.Equal(c.NotAfter) || !info.NotBefore.Equal(c.NotBefore) {
				t.Errorf("validity not copied")
			}
		})
	}
}

var errAny = errors.New("any error")

func TestTopicsExtensionLayout(t *testing.T) {
	der, err := TopicsExtension(map[string]string{"a.b": "app", "a.b.voip": "voip"}, []string{"a.b", "a.b.voip"})
	if err != nil {
		t.Fatal(err)
	}
	// SEQUENCE { UTF8 "a.b", SEQUENCE { UTF8 "app" }, UTF8 "a.b.voip", SEQUENCE { UTF8 "voip" } }
	var items []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &items); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal: %v rest %d", err, len(rest))
	}
	if len(items) != 4 || items[0].Tag != asn1.TagUTF8String || items[1].Tag != asn1.TagSequence ||
		string(items[2].Bytes) != "a.b.voip" || items[3].Tag != asn1.TagSequence {
		t.Fatalf("layout = %+v", items)
	}
	topics, err := parseTopics(der)
	if err != nil || !slices.Equal(topics, []string{"a.b", "a.b.voip"}) {
		t.Fatalf("parseTopics = %q, %v", topics, err)
	}
}
