// Package credentials reads APNs credentials (.p12 certificates and .p8
// token keys), classifies them (environment, topics, VoIP, expiry) and
// seals secrets at rest.
package credentials

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Apple's OIDs on push certificates.
var (
	OIDDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	OIDProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	OIDBundleInfo  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 4}
	OIDTopics      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 6}
	// OIDUserID is the subject attribute that holds the bundle ID.
	OIDUserID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

// Subject common-name prefixes of Apple's push certificates.
const (
	CNPrefixUniversal   = "Apple Push Services: "
	CNPrefixProduction  = "Apple Production IOS Push Services: "
	CNPrefixDevelopment = "Apple Development IOS Push Services: "
	CNPrefixVoIP        = "VoIP Services: "
)

// CertInfo is what an Apple push certificate says about itself.
type CertInfo struct {
	BundleID    string
	Topics      []string // every topic it may push to, bundle ID first
	Development bool     // valid on the sandbox host
	Production  bool     // valid on the production host
	VoIP        bool     // a VoIP Services certificate, or one listing a .voip topic
	NotBefore   time.Time
	NotAfter    time.Time
}

// ErrNotPushCertificate means the certificate carries none of Apple's push
// environment extensions.
var ErrNotPushCertificate = errors.New("not an Apple push certificate")

// ReadCertInfo classifies an Apple push certificate from its extensions and
// subject. It does not check the chain or the dates.
func ReadCertInfo(c *x509.Certificate) (CertInfo, error) {
	info := CertInfo{NotBefore: c.NotBefore, NotAfter: c.NotAfter}
	for _, ext := range c.Extensions {
		switch {
		case ext.Id.Equal(OIDDevelopment):
			info.Development = true
		case ext.Id.Equal(OIDProduction):
			info.Production = true
		case ext.Id.Equal(OIDTopics):
			topics, err := parseTopics(ext.Value)
			if err != nil {
				return CertInfo{}, fmt.Errorf("topics extension: %w", err)
			}
			info.Topics = topics
		}
	}
	if !info.Development && !info.Production {
		return CertInfo{}, ErrNotPushCertificate
	}
	info.BundleID = subjectUID(c)
	cn := c.Subject.CommonName
	if info.BundleID == "" {
		for _, p := range []string{CNPrefixUniversal, CNPrefixProduction, CNPrefixDevelopment, CNPrefixVoIP} {
			if strings.HasPrefix(cn, p) {
				info.BundleID = strings.TrimPrefix(cn, p)
			}
		}
	}
	if info.BundleID == "" {
		return CertInfo{}, fmt.Errorf("%w: no bundle ID in the subject", ErrNotPushCertificate)
	}
	info.Topics = bundleFirst(info.BundleID, info.Topics)
	info.VoIP = strings.HasPrefix(cn, CNPrefixVoIP) || contains(info.Topics, info.BundleID+".voip")
	if strings.HasPrefix(cn, CNPrefixVoIP) && !contains(info.Topics, info.BundleID+".voip") {
		info.Topics = append(info.Topics, info.BundleID+".voip")
	}
	return info, nil
}

// TopicsExtension encodes topics in the layout of Apple's .3.6 extension:
// a SEQUENCE of alternating UTF8String topic and SEQUENCE{UTF8String type}.
func TopicsExtension(topics map[string]string, order []string) ([]byte, error) {
	var raw []asn1.RawValue
	for _, t := range order {
		topic, err := asn1.MarshalWithParams(t, "utf8")
		if err != nil {
			return nil, err
		}
		kind, err := asn1.MarshalWithParams(topics[t], "utf8")
		if err != nil {
			return nil, err
		}
		seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: kind})
		if err != nil {
			return nil, err
		}
		raw = append(raw, asn1.RawValue{FullBytes: topic}, asn1.RawValue{FullBytes: seq})
	}
	return asn1.Marshal(raw)
}

func parseTopics(der []byte) ([]string, error) {
	var items []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &items)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data")
	}
	var topics []string
	for _, it := range items {
		if it.Class == asn1.ClassUniversal && it.Tag == asn1.TagUTF8String {
			topics = append(topics, string(it.Bytes))
		}
	}
	return topics, nil
}

func subjectUID(c *x509.Certificate) string {
	for _, atv := range c.Subject.Names {
		if atv.Type.Equal(OIDUserID) {
			if s, ok := atv.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// bundleFirst puts the bundle ID first, as CertInfo.Topics promises, and
// drops duplicate and empty topics. Apple lists the bundle first, but a
// certificate whose extension does not must not make Topics[0] another app.
func bundleFirst(bundleID string, topics []string) []string {
	out := []string{bundleID}
	for _, t := range topics {
		if t != "" && !contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
