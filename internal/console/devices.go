package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/ringd/ringd/internal/httpapi"
)

// tokenRef names a registration in a form without putting its token in
// the page: the console shows tokens masked.
func tokenRef(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:8])
}

// deviceRow is one registration as the Devices page shows it.
type deviceRow struct {
	httpapi.Registration
	Ref string
}

type devicesView struct {
	User string
	Rows []deviceRow
}

func (c *Console) userDevices(ctx context.Context, app int64, user string) ([]deviceRow, error) {
	regs, err := c.cfg.Services.Devices(ctx, app, user)
	if err != nil {
		return nil, err
	}
	rows := make([]deviceRow, 0, len(regs))
	for _, reg := range regs {
		rows = append(rows, deviceRow{Registration: reg, Ref: tokenRef(reg.Token)})
	}
	return rows, nil
}

// deviceByRef finds the user's registration a form names.
func (c *Console) deviceByRef(ctx context.Context, app int64, user, ref string) (string, error) {
	rows, err := c.userDevices(ctx, app, user)
	if err != nil {
		return "", err
	}
	for _, row := range rows {
		if row.Ref == ref {
			return row.Token, nil
		}
	}
	return "", &pageError{status: http.StatusNotFound, msg: "That device is no longer registered to " + user + "."}
}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	v := devicesView{User: strings.TrimSpace(r.URL.Query().Get("user"))}
	d := pageData{Title: "Devices", Nav: "devices", App: app, Data: &v}
	if v.User != "" {
		if v.Rows, err = c.userDevices(r.Context(), app.SDKAppID, v.User); err != nil {
			if _, msg, ok := userError(err); ok {
				d.Error = msg
			} else {
				return err
			}
		}
	}
	c.render(w, r, s, http.StatusOK, "devices", d)
	return nil
}

func (c *Console) unbindDevice(w http.ResponseWriter, r *http.Request, s *session) error {
	app, _ := pathApp(r)
	user := r.PostFormValue("user")
	to := appURL(app, "/devices?user="+url.QueryEscape(user))
	token, err := c.deviceByRef(r.Context(), app, user, r.PostFormValue("ref"))
	if err == nil {
		err = c.cfg.Services.Unregister(r.Context(), app, user, token)
	}
	if err != nil {
		return back(w, r, s, to, err)
	}
	c.log.Info("console: device unbound", "sdkappid", app, "user", user, "token", httpapi.MaskToken(token))
	s.setFlash("ok", "Device "+httpapi.MaskToken(token)+" unbound from "+user+".")
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
