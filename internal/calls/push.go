package calls

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// TUICallKit constants of the ext entity (tencent.md §3.2, §4.2).
const (
	extVersion        = 1 // APNs_Version
	extActionCall     = 2 // APNs_Business_Call
	extChatC2C        = 1
	extChatGroup      = 2
	signalingInvite   = 1 // SignalingActionType Invite
	signalingVersion  = 4
	callTypeAudio     = 1
	callTypeVideo     = 2
	interruptionLevel = "time-sensitive"
)

// extEntity is TUICallKit's `ext` JSON: {"entity": {...}}.
type extEntity struct {
	Entity struct {
		Version  int    `json:"version"`
		Action   int    `json:"action"`
		ChatType int    `json:"chatType"`
		Sender   string `json:"sender"`
		Nickname string `json:"nickname"`
		SendTime int64  `json:"sendTime"`
		Content  string `json:"content"`
	} `json:"entity"`
}

// extContent is the signaling info carried, JSON-encoded, in entity.content.
type extContent struct {
	Action      int             `json:"action"`
	CallID      string          `json:"call_id"`
	CallType    int             `json:"call_type"`
	InvitedList []string        `json:"invited_list"`
	RoomID      json.RawMessage `json:"room_id"`
	GroupID     string          `json:"group_id"`
	Timeout     int             `json:"timeout"`
	Version     int             `json:"version"`
}

// tuiExt builds the TUICallKit-compatible ext string of a ring push.
func tuiExt(r *record, sendTime time.Time) string {
	callType := callTypeAudio
	if r.Media == MediaVideo {
		callType = callTypeVideo
	}
	c := extContent{
		Action: signalingInvite, CallID: r.CallID, CallType: callType, InvitedList: inviteeIDs(r),
		RoomID: roomIDJSON(r.RoomID), GroupID: r.GroupID, Timeout: r.Timeout, Version: signalingVersion,
	}
	content, _ := json.Marshal(c) // strings and numbers only
	var e extEntity
	e.Entity.Version = extVersion
	e.Entity.Action = extActionCall
	e.Entity.ChatType = extChatC2C
	if r.GroupID != "" {
		e.Entity.ChatType = extChatGroup
	}
	e.Entity.Sender = r.Caller
	e.Entity.Nickname = r.CallerName
	e.Entity.SendTime = sendTime.Unix()
	e.Entity.Content = string(content)
	b, _ := json.Marshal(e)
	return string(b)
}

// roomIDJSON is the room ID as TUICallKit reads it: a number when it is a
// uint32 in decimal, else a string.
func roomIDJSON(room string) json.RawMessage {
	if n, err := strconv.ParseUint(room, 10, 32); err == nil && strconv.FormatUint(n, 10) == room {
		return json.RawMessage(room)
	}
	return jsonValue(room)
}

func inviteeIDs(r *record) []string {
	out := make([]string, len(r.Invitees))
	for i, inv := range r.Invitees {
		out[i] = inv.User
	}
	return out
}

func jsonValue(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// callCustom are the top-level payload keys every call push carries.
func callCustom(r *record) map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"call_id":     jsonValue(r.CallID),
		"uuid":        jsonValue(r.UUID),
		"caller":      jsonValue(r.Caller),
		"caller_name": jsonValue(r.CallerName),
		"media":       jsonValue(r.Media),
		"group_id":    jsonValue(r.GroupID),
		"room_id":     jsonValue(r.RoomID),
		"created_at":  jsonValue(r.CreatedAt.Unix()),
		"invitees":    jsonValue(inviteeIDs(r)),
	}
}

// ringRequest is the push that rings an invitee's devices.
func ringRequest(r *record, inv *Invitee, set settings.Settings, now time.Time, exclude []string) push.Request {
	opt := r.PushOptions
	title := firstNonEmpty(opt.Title, set.AlertTitle, r.CallerName, r.Caller)
	body := firstNonEmpty(opt.Body, set.AlertBody, settings.DefaultAlertBody)
	sound := firstNonEmpty(opt.Sound, set.Sound, settings.DefaultSound)
	exp := ceilUnix(inv.RingDeadline)
	custom := callCustom(r)
	custom["expires_at"] = jsonValue(exp)
	return push.Request{
		Title: title, Body: body, Sound: sound,
		Ext:               tuiExt(r, now),
		VoIP:              opt.VoIP == nil || *opt.VoIP,
		Expiration:        &exp,
		CollapseID:        r.CallID,
		InterruptionLevel: interruptionLevel,
		Priority:          10,
		Custom:            custom,
		ExcludeDevices:    exclude,
		Source:            push.SourceCall,
	}
}

// missedRequest is the alert that tells of a missed call.
func missedRequest(r *record, exclude []string) push.Request {
	custom := callCustom(r)
	custom["missed"] = jsonValue(true)
	return push.Request{
		Body:           fmt.Sprintf(settings.DefaultMissedCallBodyFmt, firstNonEmpty(r.CallerName, r.Caller)),
		Sound:          "default",
		CollapseID:     r.CallID, // replaces the ringing alert on devices that showed one
		Custom:         custom,
		ExcludeDevices: exclude,
		Source:         push.SourceCall,
	}
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// deviceOf names a registration's device: its device ID, or its masked
// token for a registration without one.
func deviceOf(r store.Registration) string {
	if r.DeviceID != "" {
		return r.DeviceID
	}
	t := r.Token
	if len(t) > 8 {
		t = t[:4] + "…" + t[len(t)-4:]
	}
	return "token:" + t
}

// foreground lists the user's devices connected in the foreground.
func (o *op) foreground(user string) []string {
	var fg []string
	for _, d := range o.s.hub.Devices(o.rec.SDKAppID, user) {
		if d.Foreground {
			fg = append(fg, d.DeviceID)
		}
	}
	slices.Sort(fg)
	return fg
}

// prefetchFrom is the number of invitees from which their registrations
// are read in one query. A user's own read runs a prepared statement; the
// query of many users is parsed every time, which costs more than four
// prepared reads and less than sixteen (BenchmarkInvite).
const prefetchFrom = 8

// prefetchRegistrations reads the registrations of the invitees about to
// ring in one query when they are many (a large group call), rather than
// one query each. On error nothing is kept, and each invitee's own read
// says what went wrong.
func (o *op) prefetchRegistrations(users []string) {
	if len(users) < prefetchFrom {
		return
	}
	regs, err := o.s.st.RegistrationsOfUsers(o.ctx, o.rec.SDKAppID, users)
	if err != nil {
		return
	}
	if regs == nil {
		regs = map[string][]store.Registration{}
	}
	o.regs = regs
}

// registrations returns the user's registrations, prefetched or read now.
func (o *op) registrations(user string) ([]store.Registration, error) {
	if o.regs != nil {
		return o.regs[user], nil // absent: the user has none
	}
	return o.s.st.Registrations(o.ctx, o.rec.SDKAppID, user)
}

// ringInvitee starts ringing a new invitee: it records the user's devices
// and sends one ring push to the devices not in the foreground.
func (o *op) ringInvitee(inv *Invitee) {
	app := o.rec.SDKAppID
	rs := o.rec.ring(inv.User)
	rs.Rang = true
	regs, err := o.registrations(inv.User)
	if err != nil {
		o.s.log.Warn("calls: cannot read registrations; not pushing", "call", o.rec, "user", inv.User, "err", err)
		inv.PushError = "registrations unavailable: " + err.Error()
	}
	var fg []string
	seen := map[string]bool{}
	addDevice := func(id string) {
		if !seen[id] {
			seen[id] = true
			inv.Devices = append(inv.Devices, DeviceOutcome{DeviceID: id, Outcome: OutcomeRinging})
		}
	}
	for _, d := range o.s.hub.Devices(app, inv.User) {
		if d.Foreground {
			fg = append(fg, d.DeviceID)
		}
		addDevice(d.DeviceID)
	}
	slices.Sort(fg)
	for _, r := range regs {
		addDevice(deviceOf(r))
		if r.DeviceID == "" || !slices.Contains(fg, r.DeviceID) {
			rs.Covered = append(rs.Covered, deviceOf(r))
		}
	}
	rs.Covered = compactSorted(rs.Covered)
	if len(rs.Covered) == 0 {
		return // no registration, or every registered device is in the foreground
	}
	o.submit(inv, PushRing, ringRequest(o.rec, inv, o.settings(), o.now, fg), regs)
}

// ringDevice rings one device of a ringing invitee that went to the
// background and that no ring push covered.
func (o *op) ringDevice(inv *Invitee, device string) bool {
	rs := o.rec.ring(inv.User)
	if slices.Contains(rs.Covered, device) || !inv.RingDeadline.After(o.now.Add(time.Second)) {
		return false
	}
	regs, err := o.s.st.Registrations(o.ctx, o.rec.SDKAppID, inv.User)
	if err != nil {
		o.s.log.Warn("calls: cannot read registrations; not pushing", "call", o.rec, "user", inv.User, "err", err)
		return false
	}
	var mine []store.Registration
	others := map[string]bool{}
	lone := false
	for _, r := range regs {
		switch {
		case r.DeviceID == device:
			mine = append(mine, r)
		case r.DeviceID == "":
			lone = true
		default:
			others[r.DeviceID] = true
		}
	}
	if len(mine) == 0 {
		return false // nothing to push to: the device registered no token
	}
	for _, d := range o.s.hub.Devices(o.rec.SDKAppID, inv.User) {
		if d.DeviceID != device {
			others[d.DeviceID] = true
		}
	}
	exclude := make([]string, 0, len(others))
	for d := range others {
		exclude = append(exclude, d)
	}
	slices.Sort(exclude)
	req := ringRequest(o.rec, inv, o.settings(), o.now, exclude)
	if lone {
		// Registrations without a device ID cannot be excluded: pin the
		// push to this device's token instead.
		req.Token = pickToken(mine, req.VoIP)
	}
	rs.Covered = compactSorted(append(rs.Covered, device))
	o.submit(inv, PushRing, req, regs)
	return true
}

// pickToken chooses the registration the push pipeline would: the newest
// VoIP one for a VoIP request, else the newest alert one.
func pickToken(regs []store.Registration, voip bool) string {
	best := -1
	score := func(r store.Registration) int {
		if voip && r.Kind == store.KindVoIP {
			return 2
		}
		if r.Kind != store.KindVoIP {
			return 1
		}
		return 0
	}
	for i, r := range regs {
		if best < 0 || score(r) > score(regs[best]) || (score(r) == score(regs[best]) && r.RegisteredAt.After(regs[best].RegisteredAt)) {
			best = i
		}
	}
	return regs[best].Token
}

// missedPush tells the invitee of the call they missed.
func (o *op) missedPush(inv *Invitee) {
	o.submit(inv, PushMissed, missedRequest(o.rec, o.foreground(inv.User)), nil)
}

// submit readies a push for the invitee, to be written with this change,
// and records it. regs are the user's registrations when this change has
// just read them (nil: the pipeline reads them). A failure is logged and
// recorded on the invitee; it never fails the change.
func (o *op) submit(inv *Invitee, kind string, req push.Request, regs []store.Registration) {
	st, err := o.s.pusher.Stage(o.ctx, o.rec.SDKAppID, inv.User, regs, req)
	if err != nil {
		o.s.log.Warn("calls: push not submitted", "call", o.rec, "user", inv.User, "kind", kind, "err", err)
		inv.PushError = kind + ": " + err.Error()
		return
	}
	inv.Pushes = append(inv.Pushes, PushedDevice{PushID: st.ID, Kind: kind})
	o.rec.PushIDs = append(o.rec.PushIDs, st.ID)
	o.staged = append(o.staged, st)
	o.dirty = true
}

func compactSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
