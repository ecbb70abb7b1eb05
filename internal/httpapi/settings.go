package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// Settings returns the app's settings.
func (a *API) Settings(ctx context.Context, sdkAppID int64) (settings.Settings, error) {
	s, err := a.cfg.Settings.Load(ctx, sdkAppID)
	if errors.Is(err, store.ErrNotFound) {
		return s, errAppNotFound
	}
	return s, err
}

// PutSettings validates and stores the app's settings.
func (a *API) PutSettings(ctx context.Context, sdkAppID int64, s settings.Settings) error {
	err := a.cfg.Settings.Save(ctx, sdkAppID, s)
	var se *settings.Error
	switch {
	case errors.As(err, &se):
		return apiErr(http.StatusBadRequest, se.Code, "%v", err)
	case errors.Is(err, store.ErrNotFound):
		return errAppNotFound
	}
	return err
}

// LoginPolicy is the app's login policy (for the gateway).
func (a *API) LoginPolicy(ctx context.Context, sdkAppID int64) (string, error) {
	s, err := a.Settings(ctx, sdkAppID)
	return s.LoginPolicy, err
}

// WebhookURL is the app's webhook URL, "" when none (for webhooks).
func (a *API) WebhookURL(ctx context.Context, sdkAppID int64) (string, error) {
	s, err := a.Settings(ctx, sdkAppID)
	return s.WebhookURL, err
}

// AppSecret is the app's secret key in clear (for webhook signatures).
func (a *API) AppSecret(ctx context.Context, sdkAppID int64) (string, error) {
	return a.appSecret(ctx, sdkAppID)
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	s, err := a.Settings(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// putSettings replaces only the fields the body names: it decodes the body
// over the current settings.
func (a *API) putSettings(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	cur, err := a.Settings(r.Context(), id)
	if err != nil {
		return err
	}
	patch, err := decodeJSON[json.RawMessage](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	if err := strictInto(patch, &cur); err != nil {
		return err
	}
	if err := a.PutSettings(r.Context(), id, cur); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cur)
	return nil
}
