package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ringd/ringd/internal/store"
)

// App is an app as the API shows it. SecretKey is set only when created,
// rotated or revealed.
type App struct {
	SDKAppID  int64     `json:"sdkappid"`
	Name      string    `json:"name"`
	SecretKey string    `json:"secret_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// PreviousSecretValidUntil is set by a rotation: UserSigs made with
	// the replaced key stay valid until then (--secret-grace).
	PreviousSecretValidUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
}

func appView(a *store.App) App {
	return App{SDKAppID: a.SDKAppID, Name: a.Name, CreatedAt: a.CreatedAt}
}

func secretAAD(sdkAppID int64) []byte {
	return []byte("app-secret:" + strconv.FormatInt(sdkAppID, 10))
}

// CreateApp makes an app with a fresh SDKAppID and secret key.
func (a *API) CreateApp(ctx context.Context, name string) (App, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name) {
		return App{}, apiErr(http.StatusBadRequest, "bad_name", "name must be 1 to 64 characters")
	}
	secret, err := randomHex(32)
	if err != nil {
		return App{}, err
	}
	for range 5 {
		id, err := randomSDKAppID()
		if err != nil {
			return App{}, err
		}
		sealed, err := a.cfg.Sealer.Seal([]byte(secret), secretAAD(id))
		if err != nil {
			return App{}, fmt.Errorf("seal secret: %w", err)
		}
		now := a.cfg.Now().UTC()
		app := &store.App{SDKAppID: id, Name: name, SecretSealed: sealed, CreatedAt: now, UpdatedAt: now}
		err = a.cfg.Store.CreateApp(ctx, app)
		if errors.Is(err, store.ErrConflict) {
			continue // SDKAppID taken: draw again
		}
		if err != nil {
			return App{}, fmt.Errorf("create app: %w", err)
		}
		a.secrets.Store(id, &appKeys{current: secret, loadedAt: a.cfg.Now()})
		v := appView(app)
		v.SecretKey = secret
		return v, nil
	}
	return App{}, errors.New("create app: no free SDKAppID after 5 draws")
}

// Apps lists every app.
func (a *API) Apps(ctx context.Context) ([]App, error) {
	apps, err := a.cfg.Store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(apps))
	for i := range apps {
		out = append(out, appView(&apps[i]))
	}
	return out, nil
}

// GetApp returns one app without its secret.
func (a *API) GetApp(ctx context.Context, sdkAppID int64) (App, error) {
	app, err := a.cfg.Store.App(ctx, sdkAppID)
	if errors.Is(err, store.ErrNotFound) {
		return App{}, errAppNotFound
	}
	if err != nil {
		return App{}, err
	}
	return appView(app), nil
}

// RevealSecret returns the app with its secret key.
func (a *API) RevealSecret(ctx context.Context, sdkAppID int64) (App, error) {
	v, err := a.GetApp(ctx, sdkAppID)
	if err != nil {
		return App{}, err
	}
	if v.SecretKey, err = a.appSecret(ctx, sdkAppID); err != nil {
		return App{}, err
	}
	return v, nil
}

// RotateSecret replaces the app's secret key. UserSigs made with the old
// key stay valid for the grace period (Config.SecretGrace), then are
// refused; with no grace period they are refused at once.
func (a *API) RotateSecret(ctx context.Context, sdkAppID int64) (App, error) {
	v, err := a.GetApp(ctx, sdkAppID)
	if err != nil {
		return App{}, err
	}
	secret, err := randomHex(32)
	if err != nil {
		return App{}, err
	}
	sealed, err := a.cfg.Sealer.Seal([]byte(secret), secretAAD(sdkAppID))
	if err != nil {
		return App{}, fmt.Errorf("seal secret: %w", err)
	}
	now := a.cfg.Now().UTC()
	until := now.Add(a.cfg.SecretGrace)
	if err := a.cfg.Store.RotateAppSecret(ctx, sdkAppID, sealed, until, now); err != nil {
		return App{}, err
	}
	// Read back what the store kept (the previous key is the one it
	// replaced, whoever rotated last).
	if _, err := a.appKeys(ctx, sdkAppID, true); err != nil {
		return App{}, err
	}
	v.SecretKey = secret
	if a.cfg.SecretGrace > 0 {
		v.PreviousSecretValidUntil = &until
	}
	return v, nil
}

// DeleteApp removes the app and everything of it.
func (a *API) DeleteApp(ctx context.Context, sdkAppID int64) error {
	certs, err := a.cfg.Store.Certificates(ctx, sdkAppID)
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteApp(ctx, sdkAppID); errors.Is(err, store.ErrNotFound) {
		return errAppNotFound
	} else if err != nil {
		return err
	}
	a.secrets.Delete(sdkAppID)
	a.cfg.Settings.Invalidate(sdkAppID)
	for _, c := range certs {
		a.cfg.CredentialChanged(c.ID)
	}
	return nil
}

// appKeys is an app's secret keys in clear, as cached.
type appKeys struct {
	current       string
	previous      string    // "" when none
	previousUntil time.Time // previous is accepted before this
	loadedAt      time.Time
}

// keyReloadAfter is how stale a cached key may be before a UserSig that
// does not match it makes the API read the key again (a rotation on
// another node).
const keyReloadAfter = 5 * time.Second

// appSecret returns the app's secret key in clear.
func (a *API) appSecret(ctx context.Context, sdkAppID int64) (string, error) {
	k, err := a.appKeys(ctx, sdkAppID, false)
	if err != nil {
		return "", err
	}
	return k.current, nil
}

// appKeys returns the app's keys from a cache filled on first use, or
// from the store when reload is set.
func (a *API) appKeys(ctx context.Context, sdkAppID int64, reload bool) (*appKeys, error) {
	if v, ok := a.secrets.Load(sdkAppID); ok && !reload {
		return v.(*appKeys), nil
	}
	app, err := a.cfg.Store.App(ctx, sdkAppID)
	if err != nil {
		return nil, err
	}
	plain, err := a.cfg.Sealer.Open(app.SecretSealed, secretAAD(sdkAppID))
	if err != nil {
		return nil, fmt.Errorf("open secret of app %d: %w", sdkAppID, err)
	}
	k := &appKeys{current: string(plain), loadedAt: a.cfg.Now()}
	if len(app.PreviousSecretSealed) > 0 && a.cfg.Now().Before(app.PreviousSecretUntil) {
		prev, err := a.cfg.Sealer.Open(app.PreviousSecretSealed, secretAAD(sdkAppID))
		if err != nil {
			return nil, fmt.Errorf("open previous secret of app %d: %w", sdkAppID, err)
		}
		k.previous, k.previousUntil = string(prev), app.PreviousSecretUntil
	}
	a.secrets.Store(sdkAppID, k)
	return k, nil
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeJSON[struct {
		Name string `json:"name"`
	}](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	app, err := a.CreateApp(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, app)
	return nil
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	apps, err := a.Apps(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
	return nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) error {
	return a.appResult(w, r, a.GetApp)
}

func (a *API) getSecret(w http.ResponseWriter, r *http.Request) error {
	return a.appResult(w, r, a.RevealSecret)
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	return a.appResult(w, r, a.RotateSecret)
}

func (a *API) appResult(w http.ResponseWriter, r *http.Request, f func(context.Context, int64) (App, error)) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	app, err := f(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	if err := a.DeleteApp(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// requireApp checks that the app in the path exists. It asks the settings
// cache, which every call reads anyway, rather than the store on every
// request: an app deleted through this node is gone at once, one deleted
// through another node within the cache's TTL (its writes fail meanwhile).
func (a *API) requireApp(ctx context.Context, sdkAppID int64) error {
	_, err := a.cfg.Settings.Load(ctx, sdkAppID)
	if errors.Is(err, store.ErrNotFound) {
		return errAppNotFound
	}
	return err
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// randomSDKAppID draws a ten-digit ID in the range Tencent's look like, so
// apps moving over keep IDs of the same shape.
func randomSDKAppID() (int64, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return 0, fmt.Errorf("random: %w", err)
	}
	return 1_400_000_000 + n.Int64(), nil
}

func isUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }
