package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/store"
)

// Certificate is a credential as the API shows it: never its key material.
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
	CreatedAt     time.Time  `json:"created_at"`
	Devices       *int       `json:"devices,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastErrorAt   *time.Time `json:"last_error_at"`
	LastError     string     `json:"last_error,omitempty"`
}

// Upload is one certificate upload, as the multipart form or the console sends it.
type Upload struct {
	File        []byte
	FileName    string
	Password    string
	Environment string // development, production or both
	KeyID       string // p8
	TeamID      string // p8
	BundleID    string // p8
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *API) certificateView(c *store.Certificate) Certificate {
	v := Certificate{
		ID: c.ID, SDKAppID: c.SDKAppID, Type: c.Type, Environment: c.Environment, BundleID: c.BundleID,
		Topics: c.Topics, VoIP: c.VoIP, ExpiresAt: timePtr(c.ExpiresAt), KeyID: c.KeyID, TeamID: c.TeamID,
		CreatedAt: c.CreatedAt, LastSuccessAt: timePtr(c.LastSuccessAt), LastErrorAt: timePtr(c.LastErrorAt), LastError: c.LastError,
	}
	if !c.ExpiresAt.IsZero() {
		days := int(math.Floor(c.ExpiresAt.Sub(a.cfg.Now()).Hours() / 24))
		v.DaysLeft = &days
	}
	return v
}

func credentialAAD(sdkAppID int64) []byte {
	return []byte("apns-credential:" + strconv.FormatInt(sdkAppID, 10))
}

// UploadCertificate checks, seals and stores a .p12 or .p8 and returns one
// certificate ID per environment it was uploaded for.
func (a *API) UploadCertificate(ctx context.Context, sdkAppID int64, up Upload) ([]Certificate, error) {
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	if len(up.File) == 0 {
		return nil, apiErr(http.StatusBadRequest, "file_required", "send the .p12 or .p8 file in the multipart field \"file\"")
	}
	if len(up.File) > credentials.MaxFileSize {
		return nil, apiErr(http.StatusRequestEntityTooLarge, "file_too_large", "the file is over %d bytes; APNs certificates and keys are far smaller: is it the right file?", credentials.MaxFileSize)
	}
	var certs []*store.Certificate
	var err error
	if isP8(up) {
		certs, err = a.p8Certificates(sdkAppID, up)
	} else {
		certs, err = a.p12Certificates(sdkAppID, up)
	}
	if err != nil {
		return nil, err
	}
	if err := a.cfg.Store.CreateCertificates(ctx, certs); err != nil {
		return nil, fmt.Errorf("store certificates: %w", err)
	}
	out := make([]Certificate, 0, len(certs))
	for _, c := range certs {
		a.log.Info("certificate uploaded", "sdkappid", sdkAppID, "certificate_id", c.ID, "type", c.Type, "environment", c.Environment, "bundle_id", c.BundleID, "key_id", c.KeyID)
		out = append(out, a.certificateView(c))
	}
	return out, nil
}

// isP8 tells a token key from a certificate: p8 files are PEM text, p12
// files are DER.
func isP8(up Upload) bool {
	return up.KeyID != "" || up.TeamID != "" || bytes.HasPrefix(bytes.TrimSpace(up.File), []byte("-----BEGIN"))
}

func (a *API) p12Certificates(sdkAppID int64, up Upload) ([]*store.Certificate, error) {
	p12, err := credentials.ParseP12(up.File, up.Password, a.cfg.Now())
	if err != nil {
		return nil, credentialError(err)
	}
	envs, err := credentials.ResolveEnvironments(p12.Info, up.Environment)
	if err != nil {
		return nil, credentialError(err)
	}
	sealed, err := credentials.SealMaterial(a.cfg.Sealer, credentials.Material{P12: up.File, Password: up.Password}, credentialAAD(sdkAppID))
	if err != nil {
		return nil, fmt.Errorf("seal p12: %w", err)
	}
	return a.newCertificates(envs, store.Certificate{
		SDKAppID: sdkAppID, Type: "p12", BundleID: p12.Info.BundleID, Topics: p12.Info.Topics,
		VoIP: p12.Info.VoIP, ExpiresAt: p12.Info.NotAfter.UTC(), SecretSealed: sealed,
	}), nil
}

func (a *API) p8Certificates(sdkAppID int64, up Upload) ([]*store.Certificate, error) {
	p8, err := credentials.ParseP8(up.File, up.KeyID, up.TeamID)
	if err != nil {
		return nil, credentialError(err)
	}
	if err := credentials.ValidateBundleID(up.BundleID); err != nil {
		return nil, credentialError(err)
	}
	envs, err := credentials.ResolveKeyEnvironments(up.Environment)
	if err != nil {
		return nil, credentialError(err)
	}
	sealed, err := credentials.SealMaterial(a.cfg.Sealer, credentials.Material{P8: up.File, KeyID: p8.KeyID, TeamID: p8.TeamID}, credentialAAD(sdkAppID))
	if err != nil {
		return nil, fmt.Errorf("seal p8: %w", err)
	}
	// A token key can push to every topic of its team: the app's alert and
	// VoIP topics both.
	return a.newCertificates(envs, store.Certificate{
		SDKAppID: sdkAppID, Type: "p8", BundleID: up.BundleID, Topics: []string{up.BundleID, up.BundleID + ".voip"},
		KeyID: p8.KeyID, TeamID: p8.TeamID, SecretSealed: sealed,
	}), nil
}

func (a *API) newCertificates(envs []string, tmpl store.Certificate) []*store.Certificate {
	tmpl.CreatedAt = a.cfg.Now().UTC()
	out := make([]*store.Certificate, 0, len(envs))
	for _, env := range envs {
		c := tmpl
		c.Environment = env
		out = append(out, &c)
	}
	return out
}

// credentialError turns a credentials.Error into an API error with the same code.
func credentialError(err error) error {
	var ce *credentials.Error
	if errors.As(err, &ce) {
		status := http.StatusBadRequest
		if ce.Code == "file_too_large" {
			status = http.StatusRequestEntityTooLarge
		}
		return &Error{Status: status, Code: ce.Code, Message: ce.Message}
	}
	return apiErr(http.StatusBadRequest, "bad_credential", "%v", err)
}

// Certificates lists an app's certificates with their device counts.
func (a *API) Certificates(ctx context.Context, sdkAppID int64) ([]Certificate, error) {
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	certs, err := a.cfg.Store.Certificates(ctx, sdkAppID)
	if err != nil {
		return nil, err
	}
	out := make([]Certificate, 0, len(certs))
	for i := range certs {
		v, err := a.withDeviceCount(ctx, &certs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// GetCertificate returns one certificate of the app.
func (a *API) GetCertificate(ctx context.Context, sdkAppID, id int64) (Certificate, error) {
	c, err := a.appCertificate(ctx, sdkAppID, id)
	if err != nil {
		return Certificate{}, err
	}
	return a.withDeviceCount(ctx, c)
}

func (a *API) withDeviceCount(ctx context.Context, c *store.Certificate) (Certificate, error) {
	n, err := a.cfg.Store.CountRegistrationsByCertificate(ctx, c.ID)
	if err != nil {
		return Certificate{}, err
	}
	v := a.certificateView(c)
	v.Devices = &n
	return v, nil
}

func (a *API) appCertificate(ctx context.Context, sdkAppID, id int64) (*store.Certificate, error) {
	c, err := a.cfg.Store.Certificate(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.SDKAppID != sdkAppID) {
		return nil, apiErr(http.StatusNotFound, "certificate_not_found", "app %d has no certificate %d", sdkAppID, id)
	}
	return c, err
}

// DeleteCertificate removes a certificate; with devices registered on it,
// only when forced (their registrations go with it).
func (a *API) DeleteCertificate(ctx context.Context, sdkAppID, id int64, force bool) error {
	if _, err := a.appCertificate(ctx, sdkAppID, id); err != nil {
		return err
	}
	n, err := a.cfg.Store.CountRegistrationsByCertificate(ctx, id)
	if err != nil {
		return err
	}
	if n > 0 && !force {
		return apiErr(http.StatusConflict, "certificate_in_use", "%s registered with certificate %d; delete with ?force=true to remove them too", devicesPhrase(n), id)
	}
	if err := a.cfg.Store.DeleteCertificate(ctx, id); err != nil {
		return err
	}
	a.cfg.CredentialChanged(id)
	a.log.Info("certificate deleted", "sdkappid", sdkAppID, "certificate_id", id, "registrations_removed", n)
	return nil
}

func (a *API) uploadCertificate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	up, err := readUpload(w, r)
	if err != nil {
		return err
	}
	certs, err := a.UploadCertificate(r.Context(), id, up)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"certificates": certs})
	return nil
}

// readUpload parses the multipart form within limits, in memory only.
func readUpload(w http.ResponseWriter, r *http.Request) (Upload, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	if err := r.ParseMultipartForm(maxUploadBody); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Upload{}, apiErr(http.StatusRequestEntityTooLarge, "file_too_large", "the upload is over %d bytes; certificates and keys are under %d bytes", maxUploadBody, credentials.MaxFileSize)
		}
		return Upload{}, apiErr(http.StatusBadRequest, "bad_multipart", "send multipart/form-data with the fields file, password, environment (and key_id, team_id, bundle_id for .p8): %v", err)
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	up := Upload{
		Password: r.FormValue("password"), Environment: r.FormValue("environment"),
		KeyID: r.FormValue("key_id"), TeamID: r.FormValue("team_id"), BundleID: r.FormValue("bundle_id"),
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		return Upload{}, apiErr(http.StatusBadRequest, "file_required", "send the .p12 or .p8 file in the multipart field \"file\"")
	}
	defer f.Close()
	up.FileName = hdr.Filename
	up.File, err = io.ReadAll(io.LimitReader(f, credentials.MaxFileSize+1))
	return up, err
}

func (a *API) listCertificates(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	certs, err := a.Certificates(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": certs})
	return nil
}

func pathCertificateID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErr(http.StatusBadRequest, "bad_certificate_id", "the certificate ID in the path must be a positive number")
	}
	return id, nil
}

func (a *API) getCertificate(w http.ResponseWriter, r *http.Request) error {
	app, err := pathAppID(r)
	if err != nil {
		return err
	}
	id, err := pathCertificateID(r)
	if err != nil {
		return err
	}
	c, err := a.GetCertificate(r.Context(), app, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *API) deleteCertificate(w http.ResponseWriter, r *http.Request) error {
	app, err := pathAppID(r)
	if err != nil {
		return err
	}
	id, err := pathCertificateID(r)
	if err != nil {
		return err
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	if err := a.DeleteCertificate(r.Context(), app, id, force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func devicesPhrase(n int) string {
	if n == 1 {
		return "1 device is"
	}
	return strconv.Itoa(n) + " devices are"
}
