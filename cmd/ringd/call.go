package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
)

// callStdin is where interactive mode reads commands (tests replace it).
var callStdin io.Reader = os.Stdin

type callFlags struct {
	url, user, secret, secretFile, usersig, device string
	app                                            int64
	background, jsonOut                            bool
	call, media, group, answer                     string
	timeout                                        int
	hangupAfter, cancelAfter, answerAfter          time.Duration
	exitAfter                                      time.Duration
}

// runCall is `ringd call`: a terminal client of the gateway. With --call,
// --answer or --json it runs a script and prints one JSON object per line;
// otherwise it is interactive.
func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f callFlags
	fs := flag.NewFlagSet("ringd call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "ringd base URL")
	fs.Int64Var(&f.app, "app", 0, "SDKAppID (with --secret)")
	fs.StringVar(&f.user, "user", "", "user ID (with --secret)")
	fs.StringVar(&f.secret, "secret", "", "the app's secret key, to make a UserSig (or $RINGD_SECRET_KEY, or --secret-file)")
	fs.StringVar(&f.secretFile, "secret-file", "", "file holding the app's secret key")
	fs.StringVar(&f.usersig, "usersig", "", "a UserSig (instead of --app/--secret)")
	fs.StringVar(&f.device, "device", "", `device ID (default "<user>-cli")`)
	fs.BoolVar(&f.background, "background", false, "connect in the background state (calls ring this device by push)")
	fs.BoolVar(&f.jsonOut, "json", false, "scripted mode: print JSON lines")
	fs.StringVar(&f.call, "call", "", "call these users (comma-separated), then exit when the call ends")
	fs.StringVar(&f.media, "media", "audio", "audio or video")
	fs.IntVar(&f.timeout, "timeout", 0, "ring timeout in seconds (0: the app's default)")
	fs.StringVar(&f.group, "group", "", "group ID (a group call)")
	fs.DurationVar(&f.hangupAfter, "hangup-after", 0, "hang up this long after the call is answered")
	fs.DurationVar(&f.cancelAfter, "cancel-after", 0, "cancel the call if nobody answered this long after inviting")
	fs.StringVar(&f.answer, "answer", "", "answer the first incoming call: accept, decline, busy or none")
	fs.DurationVar(&f.answerAfter, "answer-after", 0, "answer this long after the call rings")
	fs.DurationVar(&f.exitAfter, "exit-after", 0, "exit after this long whatever happens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch f.answer {
	case "", "accept", "decline", "busy", "none":
	default:
		return errors.New("--answer must be accept, decline, busy or none")
	}
	if f.media != "audio" && f.media != "video" {
		return errors.New("--media must be audio or video")
	}
	sig, user, err := callUserSig(&f)
	if err != nil {
		return err
	}
	if f.device == "" {
		f.device = user + "-cli"
	}
	state := "foreground"
	if f.background {
		state = "background"
	}
	if f.exitAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.exitAfter)
		defer cancel()
	}
	conn, err := client.Connect(ctx, client.ConnectOptions{BaseURL: f.url, UserSig: sig, DeviceID: f.device, State: state})
	if err != nil {
		return err
	}
	defer conn.Close()
	if f.call != "" || f.answer != "" || f.jsonOut {
		return (&script{f: f, me: user, conn: conn, out: stdout}).run(ctx)
	}
	return (&interactive{f: f, me: user, conn: conn, out: stdout}).run(ctx)
}

func callUserSig(f *callFlags) (sig, user string, err error) {
	if f.usersig != "" {
		if f.user != "" {
			return f.usersig, f.user, nil
		}
		us, err := auth.ParseUserSig(f.usersig)
		if err != nil {
			return "", "", fmt.Errorf("--usersig: %w", err)
		}
		return f.usersig, us.Identifier, nil
	}
	if f.app <= 0 || f.user == "" {
		return "", "", errors.New("call needs --usersig, or --app, --user and the app's secret key")
	}
	key, err := secretKey(f.secret, f.secretFile)
	if err != nil {
		return "", "", err
	}
	sig, err = auth.GenUserSig(f.app, key, f.user, 24*time.Hour, time.Now())
	return sig, f.user, err
}

// partOver reports whether ev ends the user's part in its call.
func partOver(ev client.Event, me string) bool {
	switch ev.Type {
	case client.EventAnsweredElsewhere, client.EventRejectedElsewhere:
		return true
	case client.EventTimeout:
		return ev.User == "" || ev.User == me
	}
	return ev.Call.Ended()
}

// script is the scripted mode: JSON lines out, actions on timers. Events
// and action results are handled on the run goroutine; actions run in
// their own goroutines so that events keep flowing.
type script struct {
	f       callFlags
	me      string
	conn    *client.Conn
	out     io.Writer
	results chan actionResult
	wg      sync.WaitGroup // actions in flight or scheduled

	mu     sync.Mutex
	callID string // the call this run takes part in
	timers []*time.Timer

	invited bool // run goroutine only
	hangup  bool // run goroutine only: a hang-up is scheduled
}

type actionResult struct {
	action string
	call   *client.Call
	err    error
}

type scriptLine struct {
	Time   time.Time     `json:"time"`
	Kind   string        `json:"kind"` // event, action, exit
	Action string        `json:"action,omitempty"`
	OK     *bool         `json:"ok,omitempty"`
	CallID string        `json:"call_id,omitempty"`
	State  string        `json:"state,omitempty"`
	Error  *client.Error `json:"error,omitempty"`
	Reason string        `json:"reason,omitempty"`
	Event  *client.Event `json:"event,omitempty"`
}

func (s *script) print(l scriptLine) {
	l.Time = time.Now().UTC()
	b, _ := json.Marshal(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.out.Write(append(b, '\n'))
}

// act runs one request, prints its result and hands it to the run loop.
func (s *script) act(ctx context.Context, action string, do func(ctx context.Context) (*client.Call, error)) {
	call, err := do(ctx)
	ok := err == nil
	l := scriptLine{Kind: "action", Action: action, OK: &ok}
	if call != nil {
		l.CallID, l.State = call.CallID, call.State
		if action == "invite" {
			s.mu.Lock()
			s.callID = call.CallID
			s.mu.Unlock()
		}
	}
	if err != nil {
		var ce *client.Error
		if !errors.As(err, &ce) {
			ce = &client.Error{Code: "client", Message: err.Error()}
		}
		l.Error = ce
	}
	s.print(l)
	select {
	case s.results <- actionResult{action, call, err}:
	default:
	}
}

// after runs f in d, as an action the exit waits for.
func (s *script) after(d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wg.Add(1)
	s.timers = append(s.timers, time.AfterFunc(d, func() {
		defer s.wg.Done()
		f()
	}))
}

func (s *script) ours(ev client.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.callID == "" && s.invited && s.f.call != "" && ev.Call != nil && ev.Call.Caller == s.me {
		s.callID = ev.CallID // an event of our call overtook the invite's reply
	}
	return ev.CallID != "" && ev.CallID == s.callID
}

// exit stops what is scheduled, waits for the actions in flight and
// prints the last line.
func (s *script) exit(reason string) error {
	s.mu.Lock()
	for _, t := range s.timers {
		if t.Stop() {
			s.wg.Done()
		}
	}
	s.timers = nil
	s.mu.Unlock()
	s.wg.Wait()
	s.print(scriptLine{Kind: "exit", Reason: reason})
	return nil
}

func (s *script) run(ctx context.Context) error {
	s.results = make(chan actionResult, 16)
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // actions finish even after --exit-after
	defer cancel()
	var grace <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			cancel()
			return s.exit("exit-after or interrupted")
		case <-grace:
			return s.exit("call over")
		case r := <-s.results:
			switch r.action {
			case "invite", "accept":
				if r.err != nil {
					return s.exit(r.action + " failed")
				}
			case "hangup", "decline", "busy":
				if r.call == nil || !r.call.Ended() {
					return s.exit("left the call") // the call goes on without us
				}
				grace = time.After(2 * time.Second) // wait for call.ended
			}
		case ev, ok := <-s.conn.Events():
			if !ok {
				cancel()
				err := s.conn.Err()
				_ = s.exit(fmt.Sprint(err))
				return err
			}
			l := scriptLine{Kind: "event", Event: &ev, CallID: ev.CallID}
			if ev.Err != nil {
				l.Reason = ev.Err.Error()
			}
			s.print(l)
			s.handle(actx, ev)
			if s.ours(ev) && partOver(ev, s.me) {
				return s.exit(fmt.Sprintf("call %s over: %s %s", ev.CallID, ev.Type, ev.Reason))
			}
		}
	}
}

func (s *script) handle(ctx context.Context, ev client.Event) {
	switch {
	case ev.Type == client.EventSyncDone && s.f.call != "" && !s.invited:
		s.invited = true
		s.after(0, func() { s.invite(ctx) })
	case ev.Type == client.EventInvited && s.f.answer != "" && ev.Call != nil && ev.Call.Caller != s.me:
		s.mu.Lock()
		if s.callID != "" {
			s.mu.Unlock()
			return // already in a call: let this one ring
		}
		s.callID = ev.CallID
		s.mu.Unlock()
		if s.f.answer != "none" {
			id := ev.CallID
			s.after(s.f.answerAfter, func() { s.answer(ctx, id) })
		}
	case ev.Type == client.EventAccepted && s.f.call != "" && s.ours(ev) && s.f.hangupAfter > 0 && !s.hangup:
		s.hangup = true
		s.hangupLater(ctx, ev.CallID)
	}
}

func (s *script) invite(ctx context.Context) {
	req := client.InviteRequest{Invitees: strings.Split(s.f.call, ","), Media: s.f.media, Timeout: s.f.timeout, GroupID: s.f.group}
	s.act(ctx, "invite", func(ctx context.Context) (*client.Call, error) { return s.conn.Invite(ctx, req) })
	s.mu.Lock()
	id := s.callID
	s.mu.Unlock()
	if id != "" && s.f.cancelAfter > 0 {
		s.after(s.f.cancelAfter, func() {
			if c, err := s.conn.GetCall(ctx, id); err == nil && c.State != "ringing" {
				return
			}
			s.act(ctx, "cancel", func(ctx context.Context) (*client.Call, error) { return s.conn.Cancel(ctx, id) })
		})
	}
}

func (s *script) hangupLater(ctx context.Context, id string) {
	s.after(s.f.hangupAfter, func() {
		s.act(ctx, "hangup", func(ctx context.Context) (*client.Call, error) { return s.conn.Hangup(ctx, id) })
	})
}

func (s *script) answer(ctx context.Context, id string) {
	switch s.f.answer {
	case "accept":
		s.act(ctx, "accept", func(ctx context.Context) (*client.Call, error) {
			call, err := s.conn.Accept(ctx, id)
			if err == nil && s.f.hangupAfter > 0 {
				s.hangupLater(ctx, id)
			}
			return call, err
		})
	case "decline", "busy":
		reason := map[string]string{"decline": "declined", "busy": "busy"}[s.f.answer]
		s.act(ctx, s.f.answer, func(ctx context.Context) (*client.Call, error) { return s.conn.Reject(ctx, id, reason) })
	}
}

// interactive is the human mode.
type interactive struct {
	f    callFlags
	me   string
	conn *client.Conn
	out  io.Writer

	ringing string // the call ringing this device
	current string // the call this user is in (or placed)
}

func (m *interactive) printf(format string, args ...any) {
	fmt.Fprintf(m.out, format+"\n", args...)
}

const interactiveHelp = "commands: a (accept)  d (decline)  b (busy)  h (hang up / cancel)  c <user,user> (call)  q (quit)"

func (m *interactive) run(ctx context.Context) error {
	lines := make(chan string)
	go func() { // ends with stdin; the process exits anyway
		sc := bufio.NewScanner(callStdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	m.printf("ringd call: %s on device %s — %s", m.me, m.f.device, interactiveHelp)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-m.conn.Events():
			if !ok {
				m.printf("connection finished: %v", m.conn.Err())
				if errors.Is(m.conn.Err(), client.ErrClosed) {
					return nil
				}
				return m.conn.Err()
			}
			m.show(ev)
		case line, ok := <-lines:
			if !ok {
				lines = nil // stdin closed: keep showing events until interrupted
				continue
			}
			if quit := m.command(ctx, line); quit {
				return nil
			}
		}
	}
}

func who(c *client.Call) string {
	if c == nil {
		return "?"
	}
	if c.CallerName != "" {
		return c.CallerName + " (" + c.Caller + ")"
	}
	return c.Caller
}

func (m *interactive) show(ev client.Event) {
	switch ev.Type {
	case client.EventConnected:
		m.printf("connected (session %s)", ev.SessionID)
	case client.EventDisconnected:
		m.printf("disconnected (%v); reconnecting…", ev.Err)
	case client.EventSyncDone:
	case client.EventKicked:
		m.printf("signed out: this user logged in on device %s", ev.DeviceID)
	case client.EventReconnectHint:
		m.printf("server restarting; moving in %dms", ev.AfterMS)
	case client.EventInvited:
		if ev.Call != nil && ev.Call.Caller == m.me {
			return
		}
		m.ringing = ev.CallID
		m.printf("incoming %s call from %s — [a]ccept [d]ecline [b]usy (%ds left)", ev.Call.Media, who(ev.Call), ev.TimeLeftMS/1000)
	case client.EventState:
		if ev.Call != nil && !ev.Call.Ended() {
			m.current = ev.CallID
			m.printf("in %s call %s with %s (%s)", ev.Call.Media, ev.CallID, who(ev.Call), ev.Call.State)
		}
	case client.EventAccepted:
		m.printf("%s answered", ev.User)
	case client.EventRejected:
		m.printf("%s %s", ev.User, ev.Reason)
	case client.EventCancelled:
		m.printf("%s cancelled the call", who(ev.Call))
	case client.EventTimeout:
		if ev.User == "" || ev.User == m.me {
			m.printf("no answer: the call timed out")
		} else {
			m.printf("%s did not answer", ev.User)
		}
	case client.EventLeft:
		m.printf("%s hung up", ev.User)
	case client.EventInviteesAdded:
		m.printf("more people were invited")
	case client.EventAnsweredElsewhere:
		m.printf("answered on another device")
	case client.EventRejectedElsewhere:
		m.printf("declined on another device")
	case client.EventEnded:
		m.printf("call ended (%s)", ev.Reason)
	default:
		m.printf("%s %s", ev.Type, ev.CallID)
	}
	if partOver(ev, m.me) {
		if m.ringing == ev.CallID {
			m.ringing = ""
		}
		if m.current == ev.CallID {
			m.current = ""
		}
	}
}

func (m *interactive) command(ctx context.Context, line string) (quit bool) {
	cmd, arg, _ := strings.Cut(line, " ")
	report := func(what string, call *client.Call, err error) {
		if err != nil {
			m.printf("%s: %v", what, err)
			return
		}
		m.printf("%s: ok (%s)", what, call.State)
	}
	switch cmd {
	case "":
	case "q":
		return true
	case "a", "d", "b":
		if m.ringing == "" {
			m.printf("nothing is ringing")
			return false
		}
		id := m.ringing
		var call *client.Call
		var err error
		switch cmd {
		case "a":
			call, err = m.conn.Accept(ctx, id)
			if err == nil {
				m.current = id
			}
		case "d":
			call, err = m.conn.Reject(ctx, id, "declined")
		case "b":
			call, err = m.conn.Reject(ctx, id, "busy")
		}
		m.ringing = ""
		report(map[string]string{"a": "accept", "d": "decline", "b": "busy"}[cmd], call, err)
	case "h":
		if m.current == "" {
			m.printf("no call to hang up")
			return false
		}
		call, err := m.conn.Hangup(ctx, m.current)
		report("hang up", call, err)
	case "c":
		users := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || r == ' ' })
		if len(users) == 0 {
			m.printf("c <user>[,<user>…]")
			return false
		}
		call, err := m.conn.Invite(ctx, client.InviteRequest{Invitees: users, Media: m.f.media, Timeout: m.f.timeout, GroupID: m.f.group})
		if err == nil {
			m.current = call.CallID
			m.printf("calling %s… (h to cancel)", strings.Join(users, ", "))
			return false
		}
		report("call", call, err)
	default:
		m.printf("%s", interactiveHelp)
	}
	return false
}
