package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringd/ringd/internal/auth"
)

// Cookie names. The session cookie is scoped to the console's path.
const (
	sessionCookie = "ringd_console"
	loginCookie   = "ringd_console_login" // the sign-in form's CSRF token, before a session exists
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// Body limits of console forms: a certificate upload, or a plain form.
const (
	maxUploadForm = 256 << 10
	maxPlainForm  = 64 << 10
)

// Principal is who a session acts for. Today only the operator signs in,
// with the admin token; app-scoped users would carry their apps here and
// authorize would be the only place to change.
type Principal struct {
	Admin bool
	Apps  []int64 // the apps a non-admin may see
}

// scope is what a route needs of the principal.
type scope int

const (
	scopeSignedIn       scope = iota // any signed-in principal
	scopeAdmin                       // the operator: creating apps, the simulator
	scopeApp                         // the app in the path {app}
	scopeAppSecret                   // the app's secret key (reveal, rotate)
	scopeAppCredentials              // the app's certificates (upload, delete)
)

var errForbidden = &pageError{status: http.StatusForbidden, msg: "You may not do this."}

// authorize is the console's one authorization check: every route passes
// through it with its scope before its handler runs.
func authorize(p Principal, sc scope, r *http.Request) error {
	if p.Admin {
		if sc >= scopeApp {
			if _, err := pathApp(r); err != nil {
				return err
			}
		}
		return nil
	}
	switch sc {
	case scopeSignedIn:
		return nil
	case scopeApp:
		id, err := pathApp(r)
		if err != nil {
			return err
		}
		if !p.mayUseApp(id) {
			return errAppNotFound // another app's existence is not disclosed
		}
		return nil
	}
	// Secrets, credentials and the operator's pages stay the admin's, as
	// in the REST API.
	return errForbidden
}

func (p Principal) mayUseApp(id int64) bool {
	if p.Admin {
		return true
	}
	for _, a := range p.Apps {
		if a == id {
			return true
		}
	}
	return false
}

var errAppNotFound = &pageError{status: http.StatusNotFound, msg: "There is no app with this SDKAppID."}

func pathApp(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("app"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &pageError{status: http.StatusBadRequest, msg: "The SDKAppID in the address must be a positive number."}
	}
	return id, nil
}

// session is one sign-in. Fields after mu change while it lives.
type session struct {
	id        string
	csrf      string
	principal Principal
	created   time.Time

	mu       sync.Mutex
	lastSeen time.Time
	flash    *flash
}

// flash is a message shown once on the next page.
type flash struct {
	Kind string // ok or error
	Text string
}

func (s *session) setFlash(kind, text string) {
	s.mu.Lock()
	s.flash = &flash{Kind: kind, Text: text}
	s.mu.Unlock()
}

func (s *session) takeFlash() *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

type sessionStore struct {
	now      func() time.Time
	ttl      time.Duration
	idle     time.Duration
	mu       sync.Mutex
	sessions map[string]*session
}

func newSessionStore(now func() time.Time, ttl, idle time.Duration) *sessionStore {
	return &sessionStore{now: now, ttl: ttl, idle: idle, sessions: map[string]*session{}}
}

// maxSessions bounds memory: the oldest session is dropped past it.
const maxSessions = 1000

func (st *sessionStore) create(p Principal) *session {
	now := st.now()
	s := &session{id: randomToken(), csrf: randomToken(), principal: p, created: now, lastSeen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweepLocked(now)
	if len(st.sessions) >= maxSessions {
		var oldest *session
		for _, o := range st.sessions {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(st.sessions, oldest.id)
	}
	st.sessions[s.id] = s
	return s
}

// get returns the live session with this ID and marks it used.
func (st *sessionStore) get(id string) *session {
	now := st.now()
	st.mu.Lock()
	s := st.sessions[id]
	st.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	expired := now.Sub(s.created) > st.ttl || now.Sub(s.lastSeen) > st.idle
	if !expired {
		s.lastSeen = now
	}
	s.mu.Unlock()
	if expired {
		st.delete(id)
		return nil
	}
	return s
}

func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	delete(st.sessions, id)
	st.mu.Unlock()
}

func (st *sessionStore) sweepLocked(now time.Time) {
	for id, s := range st.sessions {
		s.mu.Lock()
		dead := now.Sub(s.created) > st.ttl || now.Sub(s.lastSeen) > st.idle
		s.mu.Unlock()
		if dead {
			delete(st.sessions, id)
		}
	}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokensEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// cookie builds a console cookie: HttpOnly, SameSite=Strict, Secure when
// the request came over TLS, scoped to the console.
func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	}
}

// protect is the gate of every signed-in route: a live session, then the
// CSRF token on every state-changing request, then authorize.
func (c *Console) protect(sc scope, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var s *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method == http.MethodGet && !wantsJSON(r) {
				http.Redirect(w, r, Prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, &pageError{status: http.StatusUnauthorized, msg: "Sign in first."})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := checkCSRF(w, r, s.csrf); err != nil {
				c.log.Warn("console: request refused", "method", r.Method, "path", r.URL.Path, "err", err)
				c.renderError(w, r, s, &pageError{status: http.StatusForbidden, msg: "The form was stale or came from another site (CSRF check failed). Reload the page and try again."})
				return
			}
		}
		if err := authorize(s.principal, sc, r); err != nil {
			c.renderError(w, r, s, err)
			return
		}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	})
}

var errCSRF = errors.New("missing or wrong CSRF token")

// checkCSRF reads the token from the X-CSRF-Token header (fetch) or the
// form field (forms, multipart included) within the body limit.
func checkCSRF(w http.ResponseWriter, r *http.Request, want string) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	limit := int64(maxPlainForm)
	if mt == "multipart/form-data" {
		limit = maxUploadForm
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if got := r.Header.Get(csrfHeader); got != "" {
		if !tokensEqual(got, want) {
			return errCSRF
		}
		return nil
	}
	switch mt {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxUploadForm); err != nil {
			return err
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return err
		}
	default:
		return errCSRF
	}
	if !tokensEqual(r.PostFormValue(csrfField), want) {
		return errCSRF
	}
	return nil
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if ck, err := r.Cookie(sessionCookie); err == nil && c.sessions.get(ck.Value) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken()
	http.SetCookie(w, cookie(r, loginCookie, tok, 600))
	c.render(w, r, nil, status, "login", pageData{
		Title: "Sign in", CSRF: tok, Error: msg,
		Data: map[string]string{"Next": safeNext(r.FormValue("next"))},
	})
}

// login checks the admin token and opens a session. The form carries a
// token matching a short-lived cookie, so another site cannot sign a
// browser in (login CSRF).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxPlainForm)
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !tokensEqual(r.PostFormValue(csrfField), ck.Value) {
		c.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return
	}
	if !c.logins.allow() {
		c.renderLogin(w, r, http.StatusTooManyRequests, "Too many wrong tokens; wait a minute.")
		return
	}
	if !auth.TokenEqual(r.PostFormValue("token"), c.cfg.AdminToken) {
		c.logins.failed()
		c.log.Warn("console: sign-in refused: wrong admin token", "remote", r.RemoteAddr)
		c.renderLogin(w, r, http.StatusUnauthorized, "That is not the admin token. It is in ringd-data/admin.token, or RINGD_ADMIN_TOKEN.")
		return
	}
	s := c.sessions.create(Principal{Admin: true})
	http.SetCookie(w, cookie(r, loginCookie, "", -1))
	http.SetCookie(w, cookie(r, sessionCookie, s.id, int(c.cfg.SessionTTL.Seconds())))
	c.log.Info("console: signed in", "remote", r.RemoteAddr)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	c.sessions.delete(s.id)
	http.SetCookie(w, cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	lower := strings.ToLower(next)
	if strings.HasPrefix(next, Prefix+"/") && !strings.HasPrefix(next, Prefix+"//") && !strings.ContainsAny(next, "\\\r\n") &&
		!strings.Contains(lower, "/..") && !strings.Contains(lower, "/%2e") {
		return next
	}
	return Prefix + "/"
}

// loginLimiter slows guessing: at most 20 wrong tokens a minute.
type loginLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	fails []time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter { return &loginLimiter{now: now} }

const maxLoginFailures = 20

func (l *loginLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := l.now().Add(-time.Minute)
	i := 0
	for i < len(l.fails) && l.fails[i].Before(cut) {
		i++
	}
	l.fails = l.fails[i:]
	return len(l.fails) < maxLoginFailures
}

func (l *loginLimiter) failed() {
	l.mu.Lock()
	l.fails = append(l.fails, l.now())
	l.mu.Unlock()
}
