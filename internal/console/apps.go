package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/settings"
)

// visibleApps lists the apps the session's principal may see.
func (c *Console) visibleApps(r *http.Request, s *session) ([]httpapi.App, error) {
	apps, err := c.cfg.Services.Apps(r.Context())
	if err != nil {
		return nil, err
	}
	out := apps[:0:0]
	for _, a := range apps {
		if s.principal.mayUseApp(a.SDKAppID) {
			out = append(out, a)
		}
	}
	return out, nil
}

// app loads the app in the path (authorize has checked the principal).
func (c *Console) app(r *http.Request) (*httpapi.App, error) {
	id, err := pathApp(r)
	if err != nil {
		return nil, err
	}
	a, err := c.cfg.Services.GetApp(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func appURL(id int64, rest string) string {
	return fmt.Sprintf("%s/apps/%d%s", Prefix, id, rest)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) error {
	apps, err := c.visibleApps(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "home", pageData{Title: "ringd console", Nav: "home", Apps: apps})
	return nil
}

func (c *Console) appsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	if id, err := strconv.ParseInt(r.URL.Query().Get("app"), 10, 64); err == nil && id > 0 {
		http.Redirect(w, r, appURL(id, ""), http.StatusSeeOther) // the menu's app switcher without JavaScript
		return nil
	}
	apps, err := c.visibleApps(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "apps", pageData{Title: "Apps", Nav: "apps", Apps: apps, Data: s.principal.Admin})
	return nil
}

func (c *Console) createApp(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.cfg.Services.CreateApp(r.Context(), r.PostFormValue("name"))
	if err != nil {
		return back(w, r, s, Prefix+"/apps", err)
	}
	c.log.Info("console: app created", "sdkappid", app.SDKAppID)
	// The secret is shown once, now, like after a rotation.
	c.renderApp(w, r, s, &app, "Created. Note the secret key: it signs your users' UserSigs.")
	return nil
}

// appView is the app page: identity, secret key, settings.
type appView struct {
	Settings settings.Settings
	Secret   string
	Note     string
	Admin    bool
}

func (c *Console) appPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	c.renderApp(w, r, s, app, "")
	return nil
}

func (c *Console) renderApp(w http.ResponseWriter, r *http.Request, s *session, app *httpapi.App, note string) {
	set, err := c.cfg.Services.Settings(r.Context(), app.SDKAppID)
	if err != nil {
		c.renderError(w, r, s, err)
		return
	}
	v := appView{Settings: set, Secret: app.SecretKey, Note: note, Admin: s.principal.Admin}
	app.SecretKey = ""
	c.render(w, r, s, http.StatusOK, "app", pageData{Title: app.Name, Nav: "app", App: app, Data: v})
}

// settingsFromForm reads every field of settings.Settings; unchecked boxes
// are false.
func settingsFromForm(r *http.Request) (settings.Settings, error) {
	f := r.PostFormValue
	var bad []string
	num := func(name string) int {
		n, err := strconv.Atoi(strings.TrimSpace(f(name)))
		if err != nil {
			bad = append(bad, name)
		}
		return n
	}
	missed := f("missed_call_push") == "on"
	s := settings.Settings{
		LoginPolicy: f("login_policy"), CallWaiting: f("call_waiting") == "on", MissedCallPush: &missed,
		RingTimeout: num("ring_timeout"), MaxInvitees: num("max_invitees"), InvitesPerMinute: num("invites_per_minute"),
		AlertTitle: f("alert_title"), AlertBody: f("alert_body"), Sound: f("sound"), WebhookURL: strings.TrimSpace(f("webhook_url")),
	}
	if len(bad) > 0 {
		return s, &pageError{status: http.StatusBadRequest, msg: "Enter whole numbers for: " + strings.Join(bad, ", ")}
	}
	return s, nil
}

func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s *session) error {
	id, _ := pathApp(r)
	to := appURL(id, "#settings")
	set, err := settingsFromForm(r)
	if err == nil {
		err = c.cfg.Services.PutSettings(r.Context(), id, set)
	}
	if err != nil {
		return back(w, r, s, to, err)
	}
	s.setFlash("ok", "Settings saved.")
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// secretActions are the confirmations of the secret key's actions.
var secretActions = map[string]struct{ Title, Text, Button string }{
	"reveal": {"Reveal the secret key?", "The secret key signs UserSigs for every user of this app. Anyone who sees it can act as any user. Make sure nobody is looking over your shoulder.", "Reveal the secret key"},
	"rotate": {"Rotate the secret key?", "A new secret key replaces the current one at once: every UserSig made with the old key stops working, and your app server must switch to the new key.", "Rotate the secret key"},
}

func (c *Console) secretConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	act, ok := secretActions[r.PathValue("action")]
	if !ok {
		return &pageError{status: http.StatusNotFound, msg: "No such action."}
	}
	app, err := c.app(r)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "confirm", pageData{Title: act.Title, Nav: "app", App: app, Data: map[string]string{
		"Title": act.Title, "Text": act.Text, "Button": act.Button,
		"Action": appURL(app.SDKAppID, "/secret/"+r.PathValue("action")), "Cancel": appURL(app.SDKAppID, ""),
	}})
	return nil
}

func (c *Console) secretAction(w http.ResponseWriter, r *http.Request, s *session) error {
	id, _ := pathApp(r)
	var (
		app  httpapi.App
		err  error
		note string
	)
	switch r.PathValue("action") {
	case "reveal":
		app, err = c.cfg.Services.RevealSecret(r.Context(), id)
		note = "The secret key, shown once on this page."
	case "rotate":
		app, err = c.cfg.Services.RotateSecret(r.Context(), id)
		note = "Rotated. UserSigs made with the old key no longer verify."
		c.log.Info("console: secret rotated", "sdkappid", id)
	default:
		return &pageError{status: http.StatusNotFound, msg: "No such action."}
	}
	if err != nil {
		return back(w, r, s, appURL(id, ""), err)
	}
	c.renderApp(w, r, s, &app, note)
	return nil
}
