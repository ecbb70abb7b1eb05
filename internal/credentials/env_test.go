package credentials

import (
	"slices"
	"strings"
	"testing"
)

func TestResolveEnvironments(t *testing.T) {
	devOnly := CertInfo{BundleID: "com.x", Development: true}
	prodOnly := CertInfo{BundleID: "com.x", Production: true}
	universal := CertInfo{BundleID: "com.x", Development: true, Production: true}
	voip := CertInfo{BundleID: "com.x", Development: true, Production: true, VoIP: true}
	neither := CertInfo{BundleID: "com.x"}
	dev, prod, both := []string{EnvDevelopment}, []string{EnvProduction}, []string{EnvDevelopment, EnvProduction}

	tests := []struct {
		name      string
		info      CertInfo
		requested string
		want      []string
		wantCode  string
	}{
		{"dev-only/development", devOnly, EnvDevelopment, dev, ""},
		{"dev-only/production", devOnly, EnvProduction, nil, CodeEnvironmentMismatch},
		{"dev-only/both", devOnly, EnvBoth, nil, CodeEnvironmentMismatch},
		{"prod-only/development", prodOnly, EnvDevelopment, nil, CodeEnvironmentMismatch},
		{"prod-only/production", prodOnly, EnvProduction, prod, ""},
		{"prod-only/both", prodOnly, EnvBoth, nil, CodeEnvironmentMismatch},
		{"universal/development", universal, EnvDevelopment, dev, ""},
		{"universal/production", universal, EnvProduction, prod, ""},
		{"universal/both", universal, EnvBoth, both, ""},
		{"voip/development", voip, EnvDevelopment, dev, ""},
		{"voip/production", voip, EnvProduction, prod, ""},
		{"voip/both", voip, EnvBoth, both, ""},
		{"neither/development", neither, EnvDevelopment, nil, CodeNotPushCertificate},
		{"universal/empty", universal, "", nil, CodeBadEnvironment},
		{"universal/sandbox", universal, "sandbox", nil, CodeBadEnvironment},
		{"universal/capitalised", universal, "Production", nil, CodeBadEnvironment},
		{"dev-only/bad beats mismatch", devOnly, "prod", nil, CodeBadEnvironment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveEnvironments(tc.info, tc.requested)
			wantCode(t, err, tc.wantCode)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnvironmentMismatchMessageSaysWhatToDo(t *testing.T) {
	_, err := ResolveEnvironments(CertInfo{BundleID: "com.x", Development: true}, EnvProduction)
	want := "this is a development-only push certificate (Apple Development IOS Push Services: com.x)"
	if e, ok := err.(*Error); !ok || !strings.HasPrefix(e.Message, want) {
		t.Fatalf("message = %v", err)
	}
}

func TestResolveKeyEnvironments(t *testing.T) {
	tests := []struct {
		requested string
		want      []string
		wantCode  string
	}{
		{EnvDevelopment, []string{EnvDevelopment}, ""},
		{EnvProduction, []string{EnvProduction}, ""},
		{EnvBoth, []string{EnvDevelopment, EnvProduction}, ""},
		{"", nil, CodeBadEnvironment},
		{"staging", nil, CodeBadEnvironment},
		{" production", nil, CodeBadEnvironment},
	}
	for _, tc := range tests {
		t.Run(tc.requested, func(t *testing.T) {
			got, err := ResolveKeyEnvironments(tc.requested)
			wantCode(t, err, tc.wantCode)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
