package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/apnssim"
)

// maxPhones and maxNotes keep the Simulator page light: the newest devices
// and their newest notifications.
const (
	maxPhones = 24
	maxNotes  = 6
)

type phone struct {
	apnssim.DeviceInfo
	Notes []note // newest first
	Call  *note  // a call that rings now: shown as an incoming call
}

// note is a notification as the phone would show it.
type note struct {
	ReceivedAt time.Time
	PushType   string
	Topic      string
	Title      string
	Body       string
	Ext        string
	CallID     string
	Caller     string
	Media      string
	ExpiresAt  time.Time
	IsCall     bool
	Ringing    bool
	Payload    string // indented JSON
	Headers    apnssim.NotificationHeaders
}

type simulatorView struct {
	Phones      []phone
	Hidden      int
	Bundle      string
	Faults      apnssim.Faults
	FaultsOn    bool
	FaultsUntil time.Time
	ErrorStatus int
}

// payload is the part of an APNs body the phone shows.
type payload struct {
	APS struct {
		Alert json.RawMessage `json:"alert"`
	} `json:"aps"`
	Ext       string `json:"ext"`
	CallID    string `json:"call_id"`
	Caller    string `json:"caller"`
	CallerNm  string `json:"caller_name"`
	Media     string `json:"media"`
	ExpiresAt int64  `json:"expires_at"`
}

func readNote(n apnssim.Notification, now time.Time) note {
	out := note{ReceivedAt: n.ReceivedAt, PushType: n.Headers.PushType, Topic: n.Headers.Topic, Headers: n.Headers}
	var buf bytes.Buffer
	if json.Indent(&buf, n.Payload, "", "  ") == nil {
		out.Payload = buf.String()
	} else {
		out.Payload = string(n.Payload)
	}
	var p payload
	if n.PayloadInvalid || json.Unmarshal(n.Payload, &p) != nil {
		return out
	}
	var alert struct{ Title, Body string }
	if json.Unmarshal(p.APS.Alert, &alert) != nil {
		_ = json.Unmarshal(p.APS.Alert, &alert.Body) // "alert": "text"
	}
	out.Title, out.Body, out.Ext = alert.Title, alert.Body, p.Ext
	out.CallID, out.Caller, out.Media = p.CallID, firstNonEmpty(p.CallerNm, p.Caller), p.Media
	if p.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(p.ExpiresAt, 0).UTC()
	}
	// A ring push carries the call and until when it rings; a missed-call
	// alert carries the call but no deadline.
	out.IsCall = out.CallID != "" && (out.PushType == "voip" || !out.ExpiresAt.IsZero())
	out.Ringing = out.IsCall && now.Before(out.ExpiresAt)
	return out
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func (c *Console) simulatorView() simulatorView {
	sim := c.cfg.Simulator
	now := c.cfg.Now()
	devs := sim.Devices()
	slices.Reverse(devs) // newest first
	v := simulatorView{Bundle: "com.example.ringdemo"}
	if len(devs) > 0 {
		v.Bundle = devs[0].BundleID
	}
	if len(devs) > maxPhones {
		v.Hidden = len(devs) - maxPhones
		devs = devs[:maxPhones]
	}
	for _, d := range devs {
		ph := phone{DeviceInfo: d}
		inbox, _ := sim.Inbox(d.Token) // a device listed a moment ago has an inbox
		for i := len(inbox) - 1; i >= 0 && len(ph.Notes) < maxNotes; i-- {
			n := readNote(inbox[i], now)
			if n.Ringing && ph.Call == nil {
				ph.Call = &n
				continue
			}
			ph.Notes = append(ph.Notes, n)
		}
		v.Phones = append(v.Phones, ph)
	}
	v.Faults, v.FaultsUntil = sim.CurrentFaults()
	v.FaultsOn = v.Faults.ErrorRate > 0 || v.Faults.LatencyMS > 0 || v.Faults.ResetRate > 0 || v.Faults.GoAwayAfter > 0
	if len(v.Faults.ErrorStatuses) == 1 {
		v.ErrorStatus = v.Faults.ErrorStatuses[0]
	}
	return v
}

func (c *Console) simulatorPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, r, s, http.StatusOK, "simulator", pageData{Title: "Simulator", Nav: "simulator", Data: c.simulatorView()})
	return nil
}

// simulatorPhones renders only the phones, which the page polls.
func (c *Console) simulatorPhones(w http.ResponseWriter, r *http.Request, s *session) error {
	c.renderTemplate(w, r, s, http.StatusOK, "simulator", "phones", pageData{Data: c.simulatorView()})
	return nil
}

func simError(err error) error {
	if errors.Is(err, apnssim.ErrInvalid) || errors.Is(err, apnssim.ErrUnknownDevice) {
		return &pageError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return err
}

func (c *Console) mintDevice(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostFormValue
	tok, err := c.cfg.Simulator.MintDeviceWith(apnssim.DeviceOptions{
		BundleID: strings.TrimSpace(f("bundle_id")), Environment: f("environment"), Kind: f("kind"),
	})
	if err != nil {
		return back(w, r, s, Prefix+"/simulator", simError(err))
	}
	s.setFlash("ok", "Minted a "+f("environment")+" "+f("kind")+" token: "+tok+" — register it with the certificate ID of the same environment.")
	http.Redirect(w, r, Prefix+"/simulator", http.StatusSeeOther)
	return nil
}

func (c *Console) uninstall(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.cfg.Simulator.Uninstall(r.PostFormValue("token")); err != nil {
		return back(w, r, s, Prefix+"/simulator", simError(err))
	}
	s.setFlash("ok", "App uninstalled: APNs now answers 410 Unregistered for this token.")
	http.Redirect(w, r, Prefix+"/simulator", http.StatusSeeOther)
	return nil
}

func (c *Console) setFaults(w http.ResponseWriter, r *http.Request, s *session) error {
	to := Prefix + "/simulator#faults"
	if r.PostFormValue("op") == "clear" {
		c.cfg.Simulator.ClearFaults()
		s.setFlash("ok", "Faults cleared: the simulator answers as Apple does.")
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}
	f, err := faultsFromForm(r)
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		return back(w, r, s, to, simError(err))
	}
	c.cfg.Simulator.SetFaults(f)
	s.setFlash("ok", "Faults set.")
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func faultsFromForm(r *http.Request) (apnssim.Faults, error) {
	var f apnssim.Faults
	var bad []string
	num := func(name string) float64 {
		s := strings.TrimSpace(r.PostFormValue(name))
		if s == "" {
			return 0
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			bad = append(bad, name)
		}
		return v
	}
	f.ErrorRate = num("error_rate")
	f.ResetRate = num("reset_rate")
	f.LatencyMS = int(num("latency_ms"))
	f.GoAwayAfter = int(num("goaway_after"))
	f.DurationMS = int(num("duration_s") * 1000)
	if st := int(num("error_status")); st != 0 {
		f.ErrorStatuses = []int{st}
	}
	if len(bad) > 0 {
		return f, &pageError{status: http.StatusBadRequest, msg: "Enter numbers for: " + strings.Join(bad, ", ")}
	}
	return f, nil
}
