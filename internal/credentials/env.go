package credentials

import "fmt"

// Environments an upload may ask for. EnvBoth is a request only: it yields
// one credential ID per environment.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
	EnvBoth        = "both"
)

// ResolveEnvironments returns the environments an uploaded certificate
// yields IDs for, refusing a request the certificate cannot serve: Apple
// answers BadCertificateEnvironment on every push otherwise, which users
// read as "pushes silently stopped".
func ResolveEnvironments(info CertInfo, requested string) ([]string, error) {
	want, err := ResolveKeyEnvironments(requested)
	if err != nil {
		return nil, err
	}
	if !info.Development && !info.Production {
		return nil, newError(CodeNotPushCertificate, "the certificate is valid for neither APNs environment", ErrNotPushCertificate)
	}
	for _, env := range want {
		if env == EnvDevelopment && !info.Development {
			return nil, productionOnly(info, requested)
		}
		if env == EnvProduction && !info.Production {
			return nil, developmentOnly(info, requested)
		}
	}
	return want, nil
}

// ResolveKeyEnvironments checks the environment requested for a .p8 key.
// Apple's keys may be scoped to one environment, but nothing in the file
// says which, so any request is accepted.
func ResolveKeyEnvironments(requested string) ([]string, error) {
	switch requested {
	case EnvDevelopment, EnvProduction:
		return []string{requested}, nil
	case EnvBoth:
		return []string{EnvDevelopment, EnvProduction}, nil
	}
	return nil, newError(CodeBadEnvironment,
		fmt.Sprintf("environment must be %q, %q or %q", EnvDevelopment, EnvProduction, EnvBoth), nil)
}

func developmentOnly(info CertInfo, requested string) error {
	return newError(CodeEnvironmentMismatch, fmt.Sprintf(
		"this is a development-only push certificate (%s%s), so it cannot serve environment=%s; upload it with environment=development, or export the production certificate",
		CNPrefixDevelopment, info.BundleID, requested), nil)
}

func productionOnly(info CertInfo, requested string) error {
	return newError(CodeEnvironmentMismatch, fmt.Sprintf(
		"this is a production-only push certificate (%s%s), so it cannot serve environment=%s; upload it with environment=production, or export the development certificate",
		CNPrefixProduction, info.BundleID, requested), nil)
}
