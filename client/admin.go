package client

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"
)

// Admin calls the operator and app-server endpoints with the admin token
// (or, for one app's endpoints, an app-admin UserSig via NewAppAdmin).
type Admin struct{ c conn }

// NewAdmin returns a client authenticated with the admin token. hc may be nil.
func NewAdmin(baseURL, adminToken string, hc *http.Client) *Admin {
	return &Admin{c: newConn(baseURL, "Bearer "+adminToken, hc)}
}

// NewAppAdmin returns a client authenticated with the UserSig of the app's
// "administrator" user: it can reach that app's certificates and pushes.
func NewAppAdmin(baseURL, userSig string, hc *http.Client) *Admin {
	return &Admin{c: newConn(baseURL, "UserSig "+userSig, hc)}
}

// App is an app; SecretKey is set on creation, rotation and reveal.
type App struct {
	SDKAppID  int64     `json:"sdkappid"`
	Name      string    `json:"name"`
	SecretKey string    `json:"secret_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Certificate is an uploaded APNs credential; ID is the businessID.
type Certificate struct {
	ID            int64      `json:"id"`
	SDKAppID      int64      `json:"sdkappid"`
	Type          string     `json:"type"`
	Environment   string     `json:"environment"`
	BundleID      string     `json:"bundle_id"`
	Topics        []string   `json:"topics"`
	VoIP          bool       `json:"voip"`
	ExpiresAt     *time.Time `json:"expires_at"`
	DaysLeft      *int       `json:"days_left,omitempty"`
	KeyID         string     `json:"key_id,omitempty"`
	TeamID        string     `json:"team_id,omitempty"`
	Devices       *int       `json:"devices,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastErrorAt   *time.Time `json:"last_error_at"`
	LastError     string     `json:"last_error,omitempty"`
}

// CreateApp creates an app and returns it with its secret key.
func (a *Admin) CreateApp(ctx context.Context, name string) (*App, error) {
	var app App
	return &app, a.c.do(ctx, http.MethodPost, "/v1/apps", map[string]string{"name": name}, &app)
}

// Apps lists the apps.
func (a *Admin) Apps(ctx context.Context) ([]App, error) {
	var out struct {
		Apps []App `json:"apps"`
	}
	return out.Apps, a.c.do(ctx, http.MethodGet, "/v1/apps", nil, &out)
}

// RotateSecret gives the app a new secret key.
func (a *Admin) RotateSecret(ctx context.Context, sdkAppID int64) (*App, error) {
	var app App
	return &app, a.c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/apps/%d/secret/rotate", sdkAppID), nil, &app)
}

// DeleteApp removes an app and all it holds.
func (a *Admin) DeleteApp(ctx context.Context, sdkAppID int64) error {
	return a.c.do(ctx, http.MethodDelete, fmt.Sprintf("/v1/apps/%d", sdkAppID), nil, nil)
}

// UploadP12 uploads a .p12 certificate for "development", "production" or
// "both" and returns one certificate per environment.
func (a *Admin) UploadP12(ctx context.Context, sdkAppID int64, p12 []byte, password, environment string) ([]Certificate, error) {
	return a.upload(ctx, sdkAppID, p12, "cert.p12", map[string]string{"password": password, "environment": environment})
}

// UploadP8 uploads a .p8 token key.
func (a *Admin) UploadP8(ctx context.Context, sdkAppID int64, p8 []byte, keyID, teamID, bundleID, environment string) ([]Certificate, error) {
	return a.upload(ctx, sdkAppID, p8, "AuthKey_"+keyID+".p8", map[string]string{
		"key_id": keyID, "team_id": teamID, "bundle_id": bundleID, "environment": environment,
	})
}

func (a *Admin) upload(ctx context.Context, sdkAppID int64, file []byte, name string, fields map[string]string) ([]Certificate, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			return nil, err
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(file); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.c.base+fmt.Sprintf("/v1/apps/%d/certificates", sdkAppID), &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out struct {
		Certificates []Certificate `json:"certificates"`
	}
	return out.Certificates, a.c.send(req, &out)
}

// Certificates lists the app's certificates.
func (a *Admin) Certificates(ctx context.Context, sdkAppID int64) ([]Certificate, error) {
	var out struct {
		Certificates []Certificate `json:"certificates"`
	}
	return out.Certificates, a.c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%d/certificates", sdkAppID), nil, &out)
}

// DeleteCertificate deletes a certificate; force also removes the devices
// registered with it.
func (a *Admin) DeleteCertificate(ctx context.Context, sdkAppID, id int64, force bool) error {
	return a.c.do(ctx, http.MethodDelete, fmt.Sprintf("/v1/apps/%d/certificates/%d?force=%t", sdkAppID, id, force), nil, nil)
}

// Devices lists a user's registrations.
func (a *Admin) Devices(ctx context.Context, sdkAppID int64, user string) ([]Registration, error) {
	var out struct {
		Registrations []Registration `json:"registrations"`
	}
	return out.Registrations, a.c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%d/users/%s/devices", sdkAppID, url.PathEscape(user)), nil, &out)
}
