package credentials

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// MaxFileSize bounds every uploaded credential file. Real .p12 and .p8 files
// are a few KiB; anything bigger is a mistake or an attack.
const MaxFileSize = 64 << 10

// P12 is a parsed and checked Apple push certificate with its private key.
// It prints and logs redacted (see redact.go): the key must never reach a log.
type P12 struct {
	Info        CertInfo
	Certificate tls.Certificate // leaf + private key, Leaf set
}

// ParseP12 decodes an uploaded .p12, picks the certificate that matches its
// private key, and checks that it is an Apple push certificate valid at now.
func ParseP12(data []byte, password string, now time.Time) (*P12, error) {
	cert, err := decodeP12(data, password)
	if err != nil {
		return nil, err
	}
	info, err := ReadCertInfo(cert.Leaf)
	if err != nil {
		return nil, notPushCertificate(cert.Leaf, err)
	}
	if err := ValidateBundleID(info.BundleID); err != nil {
		return nil, newError(CodeNotPushCertificate,
			"the certificate's bundle ID is not a valid app bundle ID; export the push certificate of your app", err)
	}
	if err := checkValidity(info, now); err != nil {
		return nil, err
	}
	return &P12{Info: info, Certificate: cert}, nil
}

// decodeP12 returns the leaf certificate and its key, without judging what
// kind of certificate it is. Material.TLSCertificate uses it at send time,
// when an expired certificate should still load so that Apple's answer (and
// not ours) is what the user sees in the trace.
func decodeP12(data []byte, password string) (tls.Certificate, error) {
	if len(data) > MaxFileSize {
		return tls.Certificate{}, newError(CodeFileTooLarge,
			fmt.Sprintf("the file is larger than %d KiB; upload the .p12 exported from Keychain Access", MaxFileSize>>10), nil)
	}
	// Tencent's rule, kept for the same reason: a .p12 without a password
	// is usually an export mistake, and such files do not push.
	if password == "" {
		return tls.Certificate{}, newError(CodeP12PasswordRequired,
			"a password is required; export the certificate from Keychain Access again with a password and enter it here", nil)
	}
	if err := checkP12Password(password); err != nil {
		return tls.Certificate{}, err
	}
	if err := checkP12Cost(data); err != nil {
		return tls.Certificate{}, err
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return tls.Certificate{}, classifyPKCS12Error(err)
	}
	return pairKey(key, append([]*x509.Certificate{leaf}, chain...))
}

// checkP12Password rejects passwords that PKCS#12 cannot encode (it stores
// them as UCS-2), which would otherwise surface as a confusing decode error.
func checkP12Password(password string) error {
	if !utf8.ValidString(password) {
		return newError(CodeP12BadPassword, "the password is not valid UTF-8 text", nil)
	}
	for _, r := range password {
		if r > 0xFFFF {
			return newError(CodeP12BadPassword,
				"the password contains characters (such as emoji) that a .p12 password cannot hold; check the password", nil)
		}
	}
	return nil
}

func classifyPKCS12Error(err error) error {
	var notImpl pkcs12.NotImplementedError
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return newError(CodeP12BadPassword,
			"the password does not open this .p12; enter the password chosen when exporting it from Keychain Access", err)
	case errors.Is(err, pkcs12.ErrDecryption):
		// The MAC matched but a bag did not decrypt: the file uses a
		// different password for its contents than for its integrity check.
		return newError(CodeP12BadPassword,
			"the password does not decrypt this .p12; export it again with a single password", err)
	case errors.As(err, &notImpl):
		return newError(CodeP12Malformed,
			"this .p12 uses a format ringd cannot read; export it again from Keychain Access (certificate and private key together)", err)
	default:
		return newError(CodeP12Malformed,
			"this file is not a readable .p12; export the push certificate and its private key together from Keychain Access", err)
	}
}

// pairKey picks the certificate whose public key matches the private key.
// DecodeChain assumes the first certificate is the leaf, but exports that
// include intermediates do not always put it first.
func pairKey(key any, certs []*x509.Certificate) (tls.Certificate, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return tls.Certificate{}, newError(CodeP12Malformed, "the private key in this .p12 is of an unsupported type", nil)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return tls.Certificate{}, newError(CodeP12Malformed, "the private key in this .p12 is of an unsupported type", nil)
	}
	for _, c := range certs {
		if c != nil && pub.Equal(c.PublicKey) {
			return tls.Certificate{Certificate: certChain(c, certs), PrivateKey: key, Leaf: c}, nil
		}
	}
	return tls.Certificate{}, newError(CodeP12Malformed,
		"the private key in this .p12 belongs to none of its certificates; export the push certificate together with its own private key", nil)
}

// certChain puts the leaf first, as TLS requires, followed by the others.
func certChain(leaf *x509.Certificate, certs []*x509.Certificate) [][]byte {
	chain := [][]byte{leaf.Raw}
	for _, c := range certs {
		if c != nil && c != leaf {
			chain = append(chain, c.Raw)
		}
	}
	return chain
}

func notPushCertificate(c *x509.Certificate, err error) error {
	msg := fmt.Sprintf("%q is not an Apple push certificate; in the Apple Developer portal create an \"Apple Push Notification service SSL\" or \"VoIP Services\" certificate and export it from Keychain Access", c.Subject.CommonName)
	if !errors.Is(err, ErrNotPushCertificate) {
		msg = fmt.Sprintf("the push extensions of %q cannot be read; export the certificate again from Keychain Access", c.Subject.CommonName)
	}
	return newError(CodeNotPushCertificate, msg, err)
}

func checkValidity(info CertInfo, now time.Time) error {
	if now.After(info.NotAfter) {
		return newError(CodeCertificateExpired,
			fmt.Sprintf("the certificate for %s expired on %s; create a new push certificate in the Apple Developer portal and upload it", info.BundleID, info.NotAfter.UTC().Format(time.DateOnly)), nil)
	}
	if now.Before(info.NotBefore) {
		return newError(CodeCertificateNotYetValid,
			fmt.Sprintf("the certificate for %s is valid only from %s; check this server's clock or upload it later", info.BundleID, info.NotBefore.UTC().Format(time.RFC3339)), nil)
	}
	return nil
}

// LogValue logs what identifies the certificate, never the key.
func (p P12) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bundle_id", p.Info.BundleID),
		slog.Bool("development", p.Info.Development),
		slog.Bool("production", p.Info.Production),
		slog.Bool("voip", p.Info.VoIP),
		slog.Time("not_after", p.Info.NotAfter),
	)
}

// String describes the certificate without its key.
func (p P12) String() string {
	return fmt.Sprintf("credentials.P12{BundleID: %q, Development: %t, Production: %t, VoIP: %t, NotAfter: %s, PrivateKey: [redacted]}",
		p.Info.BundleID, p.Info.Development, p.Info.Production, p.Info.VoIP, p.Info.NotAfter.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the private key.
func (p P12) GoString() string { return p.String() }

// Format keeps every verb (%d and %x included) from printing the private key.
func (p P12) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// MarshalJSON keeps the private key out of API responses and JSON logs.
func (p P12) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Info CertInfo `json:"info"`
	}{p.Info})
}
