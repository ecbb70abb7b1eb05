package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// Registration is a device registration as the API shows it.
type Registration struct {
	UserID            string     `json:"user"`
	Token             string     `json:"token"`
	CertificateID     int64      `json:"business_id"`
	Environment       string     `json:"environment"`
	Kind              string     `json:"kind"`
	DeviceID          string     `json:"device_id,omitempty"`
	RegisteredAt      time.Time  `json:"registered_at"`
	LastSuccessAt     *time.Time `json:"last_success_at"`
	LastFailureAt     *time.Time `json:"last_failure_at"`
	LastFailureReason string     `json:"last_failure_reason,omitempty"`
}

func registrationView(r *store.Registration) Registration {
	return Registration{
		UserID: r.UserID, Token: r.Token, CertificateID: r.CertificateID, Environment: r.Environment, Kind: r.Kind,
		DeviceID: r.DeviceID, RegisteredAt: r.RegisteredAt, LastSuccessAt: timePtr(r.LastSuccessAt),
		LastFailureAt: timePtr(r.LastFailureAt), LastFailureReason: r.LastFailureReason,
	}
}

// SetAPNS is the seed's setAPNS: it binds a device token to a user with a
// certificate ID (businessID).
type SetAPNS struct {
	BusinessID int64  `json:"business_id"`
	Token      string `json:"token"`
	VoIP       *bool  `json:"voip,omitempty"`
	DeviceID   string `json:"device_id,omitempty"`
}

const maxDeviceID = 128

// Register binds the token to the user and returns the registration.
func (a *API) Register(ctx context.Context, sdkAppID int64, userID string, req SetAPNS) (Registration, error) {
	token, err := ParseDeviceToken(req.Token)
	if err != nil {
		return Registration{}, err
	}
	if len(req.DeviceID) > maxDeviceID {
		return Registration{}, apiErr(http.StatusBadRequest, "bad_device_id", "device_id is at most %d bytes", maxDeviceID)
	}
	cert, err := a.registrationCertificate(ctx, sdkAppID, req.BusinessID)
	if err != nil {
		return Registration{}, err
	}
	kind, err := registrationKind(cert, req.VoIP)
	if err != nil {
		return Registration{}, err
	}
	reg := &store.Registration{
		SDKAppID: sdkAppID, UserID: userID, Token: token, CertificateID: cert.ID, Environment: cert.Environment,
		Kind: kind, DeviceID: req.DeviceID, RegisteredAt: a.cfg.Now().UTC(),
	}
	evicted, err := a.cfg.Store.PutRegistration(ctx, reg, a.cfg.MaxDevices)
	if err != nil {
		return Registration{}, err
	}
	for _, e := range evicted {
		a.log.Info("device evicted: user over the device limit", "sdkappid", sdkAppID, "user", userID, "token", MaskToken(e.Token), "limit", a.cfg.MaxDevices)
	}
	a.log.Info("device registered", "sdkappid", sdkAppID, "user", userID, "token", MaskToken(token), "certificate_id", cert.ID, "environment", cert.Environment, "kind", kind)
	return registrationView(reg), nil
}

// registrationCertificate finds the businessID among the app's
// certificates, or says which IDs the app has.
func (a *API) registrationCertificate(ctx context.Context, sdkAppID, id int64) (*store.Certificate, error) {
	if id <= 0 {
		return nil, apiErr(http.StatusBadRequest, "bad_business_id", "business_id must be the certificate ID shown when the certificate was uploaded")
	}
	c, err := a.cfg.Store.Certificate(ctx, id)
	if err == nil && c.SDKAppID == sdkAppID {
		return c, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	certs, err := a.cfg.Store.Certificates(ctx, sdkAppID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(certs))
	for _, c := range certs {
		ids = append(ids, strconv.FormatInt(c.ID, 10)+" ("+c.Environment+")")
	}
	known := "it has no certificates yet: upload one first"
	if len(ids) > 0 {
		known = "its certificate IDs are " + strings.Join(ids, ", ")
	}
	return nil, apiErr(http.StatusBadRequest, "unknown_business_id", "business_id %d is not a certificate ID of app %d; %s", id, sdkAppID, known)
}

// registrationKind decides whether a token is a PushKit (VoIP) token: a
// VoIP Services certificate's tokens are, and so are tokens sent with
// "voip": true for a credential that covers the .voip topic.
func registrationKind(c *store.Certificate, voip *bool) (string, error) {
	coversVoIP := slices.Contains(c.Topics, c.BundleID+".voip")
	switch {
	case voip == nil && c.Type == "p12" && c.VoIP:
		return store.KindVoIP, nil
	case voip == nil || !*voip:
		return store.KindAlert, nil
	case coversVoIP:
		return store.KindVoIP, nil
	}
	return "", apiErr(http.StatusBadRequest, "certificate_not_voip", "certificate %d does not cover the topic %s.voip; register PushKit tokens with a VoIP Services certificate or a .p8 key", c.ID, c.BundleID)
}

// Unregister removes the caller's registration of a token (setAPNS(nil)).
func (a *API) Unregister(ctx context.Context, sdkAppID int64, userID, rawToken string) error {
	token, err := ParseDeviceToken(rawToken)
	if err != nil {
		return err
	}
	reg, err := a.cfg.Store.Registration(ctx, sdkAppID, token)
	if errors.Is(err, store.ErrNotFound) || (err == nil && userID != "" && reg.UserID != userID) {
		return apiErr(http.StatusNotFound, "registration_not_found", "this token is not registered to %s", userOrApp(userID))
	}
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteRegistration(ctx, sdkAppID, token); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	a.log.Info("device unregistered", "sdkappid", sdkAppID, "user", reg.UserID, "token", MaskToken(token))
	return nil
}

func userOrApp(userID string) string {
	if userID == "" {
		return "this app"
	}
	return "user " + userID
}

// Devices lists a user's registrations.
func (a *API) Devices(ctx context.Context, sdkAppID int64, userID string) ([]Registration, error) {
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	regs, err := a.cfg.Store.Registrations(ctx, sdkAppID, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Registration, 0, len(regs))
	for i := range regs {
		out = append(out, registrationView(&regs[i]))
	}
	return out, nil
}

func (a *API) putAPNS(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeJSON[SetAPNS](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	reg, err := a.Register(r.Context(), p.sdkAppID, p.userID, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reg)
	return nil
}

func (a *API) deleteAPNS(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeJSON[struct {
		Token string `json:"token"`
	}](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if err := a.Unregister(r.Context(), p.sdkAppID, p.userID, req.Token); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listAPNS(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	regs, err := a.Devices(r.Context(), p.sdkAppID, p.userID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"registrations": regs})
	return nil
}

func (a *API) userDevices(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	user := r.PathValue("user")
	if err := checkUserID(user); err != nil {
		return err
	}
	regs, err := a.Devices(r.Context(), id, user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"registrations": regs})
	return nil
}

func (a *API) unbindDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	if err := a.Unregister(r.Context(), id, "", r.PathValue("token")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
