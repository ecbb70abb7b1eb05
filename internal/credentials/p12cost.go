package credentials

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// maxP12Iterations caps the key-derivation work a .p12 may ask for. The
// file chooses its own iteration counts and go-pkcs12 honours any value, so
// without a cap a 1 KiB upload could pin a CPU for minutes. Keychain Access,
// Windows and OpenSSL use 1 to 2,048 and Java 10,000; at 100,000 the
// slowest file (legacy SHA-1 KDF, five derivations) costs about 0.12 s.
// A variable only so that tests can lower it instead of spending the
// iterations to build their samples.
var maxP12Iterations = 100_000

// PKCS#12 structures, mirroring go-pkcs12's, read only far enough to find
// iteration counts before the library spends them.
type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12EncryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     []byte `asn1:"tag:0,optional"`
	}
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes asn1.RawValue `asn1:"optional"`
}

type p12EncryptedKey struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// Parameters: PKCS#12 PBE (RFC 7292 appendix C) and PBES2/PBMAC1 (RFC 8018).
type p12PBEParams struct {
	Salt       []byte
	Iterations int
}

type p12PBES2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type p12PBKDF2Params struct {
	Salt       asn1.RawValue
	Iterations int
	Rest       asn1.RawValue `asn1:"optional"`
	Prf        asn1.RawValue `asn1:"optional"`
}

var (
	oidP12Data          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidP12EncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidP12ShroudedKey   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidP12PBEPrefix     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
	oidPBES2            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBKDF2           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// checkP12Cost rejects files whose visible iteration counts exceed the cap.
// Structures it cannot read are left to go-pkcs12, which reads them the
// same way and will reject them. Key bags inside encrypted contents cannot
// be seen before decryption; exporters put the key in plain contents.
func checkP12Cost(data []byte) error {
	var pfx p12PFX
	if _, err := asn1.Unmarshal(data, &pfx); err != nil {
		return nil
	}
	if err := checkIterations(pfx.MacData.Iterations); err != nil {
		return err
	}
	if err := checkAlgorithmCost(pfx.MacData.Mac.Algorithm); err != nil {
		return err
	}
	if !pfx.AuthSafe.ContentType.Equal(oidP12Data) {
		return nil
	}
	// A RawValue, not []byte, because go-pkcs12 accepts any tag here.
	var safe asn1.RawValue
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &safe); err != nil {
		return nil
	}
	var contents []p12ContentInfo
	if _, err := asn1.Unmarshal(safe.Bytes, &contents); err != nil {
		return nil
	}
	for _, ci := range contents {
		if err := checkContentCost(ci); err != nil {
			return err
		}
	}
	return nil
}

func checkContentCost(ci p12ContentInfo) error {
	switch {
	case ci.ContentType.Equal(oidP12EncryptedData):
		var ed p12EncryptedData
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
			return nil
		}
		return checkAlgorithmCost(ed.Info.Algorithm)
	case ci.ContentType.Equal(oidP12Data):
		var raw []byte
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &raw); err != nil {
			return nil
		}
		return checkBagsCost(raw)
	}
	return nil
}

func checkBagsCost(der []byte) error {
	var bags []p12SafeBag
	if _, err := asn1.Unmarshal(der, &bags); err != nil {
		return nil
	}
	for _, b := range bags {
		if !b.ID.Equal(oidP12ShroudedKey) {
			continue
		}
		var k p12EncryptedKey
		if _, err := asn1.Unmarshal(b.Value.Bytes, &k); err != nil {
			continue
		}
		if err := checkAlgorithmCost(k.Algorithm); err != nil {
			return err
		}
	}
	return nil
}

func checkAlgorithmCost(alg pkix.AlgorithmIdentifier) error {
	params := alg.Parameters.FullBytes
	switch {
	case alg.Algorithm.Equal(oidPBES2), alg.Algorithm.Equal(oidPBMAC1):
		var p p12PBES2Params
		if _, err := asn1.Unmarshal(params, &p); err != nil || !p.KDF.Algorithm.Equal(oidPBKDF2) {
			return nil
		}
		var kdf p12PBKDF2Params
		if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &kdf); err != nil {
			return nil
		}
		return checkIterations(kdf.Iterations)
	case hasPrefix(alg.Algorithm, oidP12PBEPrefix):
		var p p12PBEParams
		if _, err := asn1.Unmarshal(params, &p); err != nil {
			return nil
		}
		return checkIterations(p.Iterations)
	}
	return nil
}

func checkIterations(n int) error {
	if n > maxP12Iterations {
		return newError(CodeP12Malformed,
			fmt.Sprintf("this .p12 asks for %d key-derivation iterations, more than the %d ringd accepts; export it again from Keychain Access", n, maxP12Iterations), nil)
	}
	return nil
}

func hasPrefix(oid, prefix asn1.ObjectIdentifier) bool {
	return len(oid) > len(prefix) && oid[:len(prefix)].Equal(prefix)
}
