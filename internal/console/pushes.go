package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/push"
)

type pushTestView struct {
	User    string
	Ref     string // the registration picked on the Devices page
	Devices []deviceRow
}

func (c *Console) pushTestPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	v := pushTestView{User: strings.TrimSpace(r.URL.Query().Get("user")), Ref: r.URL.Query().Get("ref")}
	d := pageData{Title: "Push test", Nav: "push", App: app, Data: &v}
	if v.User != "" {
		if v.Devices, err = c.userDevices(r.Context(), app.SDKAppID, v.User); err != nil {
			if _, msg, ok := userError(err); !ok {
				return err
			} else {
				d.Error = msg
			}
		}
	}
	c.render(w, r, s, http.StatusOK, "push", d)
	return nil
}

// sendPush queues a test push. A fetch (Accept: application/json) gets the
// push ID and watches the trace; a plain form goes to the trace page.
func (c *Console) sendPush(w http.ResponseWriter, r *http.Request, s *session) error {
	app, _ := pathApp(r)
	f := r.PostFormValue
	user := strings.TrimSpace(f("user"))
	req := httpapi.PushRequest{User: user}
	req.Title, req.Body, req.Ext, req.Sound = f("title"), f("body"), f("ext"), f("sound")
	req.VoIP = f("kind") == "voip"
	var err error
	if ref := f("ref"); ref != "" {
		req.Token, err = c.deviceByRef(r.Context(), app, user, ref)
	}
	var res httpapi.PushResult
	if err == nil {
		res, err = c.cfg.Services.SendPush(r.Context(), app, req)
	}
	if err != nil {
		if wantsJSON(r) {
			return err
		}
		return back(w, r, s, appURL(app, "/push?user="+url.QueryEscape(user)), err)
	}
	traceURL := appURL(app, "/pushes/"+url.PathEscape(res.PushID))
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]string{"push_id": res.PushID, "trace_url": traceURL, "json_url": traceURL + "/json"})
		return nil
	}
	http.Redirect(w, r, traceURL, http.StatusSeeOther)
	return nil
}

type pushesView struct {
	User   string
	Pushes []push.Summary
}

// pushesPage is the troubleshooting tool's start: a push ID, or a user's
// (or the app's) recent pushes.
func (c *Console) pushesPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, appURL(app.SDKAppID, "/pushes/"+url.PathEscape(id)), http.StatusSeeOther)
		return nil
	}
	v := pushesView{User: strings.TrimSpace(q.Get("user"))}
	d := pageData{Title: "Push troubleshooting", Nav: "pushes", App: app, Data: &v}
	if v.Pushes, err = c.cfg.Services.RecentPushes(r.Context(), app.SDKAppID, v.User, 50); err != nil {
		if _, msg, ok := userError(err); !ok {
			return err
		} else {
			d.Error = msg
		}
	}
	c.render(w, r, s, http.StatusOK, "pushes", d)
	return nil
}

// traceView is one push's whole chain for the trace page.
type traceView struct {
	*push.Trace
	BadDeviceToken bool // an attempt was refused with BadDeviceToken: explain the seed's FAQ 1
	Unregistered   bool
	Final          bool
}

func (c *Console) loadTrace(r *http.Request) (*push.Trace, error) {
	app, _ := pathApp(r)
	t, err := c.cfg.Services.PushTrace(r.Context(), app, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return maskTrace(t), nil
}

// maskTrace copies the trace with its tokens masked, as the console shows
// every token.
func maskTrace(t *push.Trace) *push.Trace {
	out := *t
	out.Devices = make([]push.DeviceTrace, len(t.Devices))
	for i, d := range t.Devices {
		d.Token = httpapi.MaskToken(d.Token)
		out.Devices[i] = d
	}
	return &out
}

func (c *Console) tracePage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	t, err := c.loadTrace(r)
	if err != nil {
		return err
	}
	v := traceView{Trace: t, Final: t.Status != push.StatusPending}
	for _, d := range t.Devices {
		for _, a := range d.Attempts {
			v.BadDeviceToken = v.BadDeviceToken || a.Reason == "BadDeviceToken"
			v.Unregistered = v.Unregistered || a.Reason == "Unregistered"
		}
	}
	c.render(w, r, s, http.StatusOK, "trace", pageData{Title: "Push " + t.PushID, Nav: "pushes", App: app, Data: v})
	return nil
}

func (c *Console) traceJSON(w http.ResponseWriter, r *http.Request, _ *session) error {
	t, err := c.loadTrace(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
