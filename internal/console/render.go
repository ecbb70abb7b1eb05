package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/httpapi"
)

// pageNames are the templates/<name>.html files; each defines "content"
// and is rendered inside layout.html.
var pageNames = []string{
	"login", "error", "home", "apps", "app", "confirm", "certificates", "devices", "push",
	"pushes", "trace", "calls", "dashboard", "simulator",
}

type pages struct{ t map[string]*template.Template }

func parsePages() (*pages, error) {
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// pageData is what every page's template receives.
type pageData struct {
	Title    string
	Nav      string // the highlighted menu entry
	CSRF     string
	SignedIn bool
	Sim      bool
	App      *httpapi.App // the app the page is about, if any
	Apps     []httpapi.App
	Flash    *flash
	Error    string
	Data     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, d pageData) {
	c.renderTemplate(w, r, s, status, name, "layout", d)
}

func (c *Console) renderTemplate(w http.ResponseWriter, r *http.Request, s *session, status int, page, tmpl string, d pageData) {
	t := c.pages.t[page]
	if s != nil {
		d.SignedIn = true
		d.CSRF = s.csrf
		if d.Flash == nil && tmpl == "layout" { // a polled fragment must not eat the next page's message
			d.Flash = s.takeFlash()
		}
		d.Sim = c.cfg.Simulator != nil && s.principal.Admin
		if d.Apps == nil && tmpl == "layout" {
			d.Apps, _ = c.visibleApps(r, s) // the menu only; a failure shows no switcher
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, d); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error; it has been logged", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageError is an error shown to the user as is.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

// apiError is what httpapi's *Error offers: a status and a stable code.
type apiError interface {
	HTTPStatus() int
	ErrorCode() string
}

// userError returns the status and message to show for err, and false for
// an unexpected error.
func userError(err error) (int, string, bool) {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.status, pe.msg, true
	}
	var he *httpapi.Error
	if errors.As(err, &he) {
		return he.Status, he.Message, true
	}
	var ae apiError
	if errors.As(err, &ae) {
		return ae.HTTPStatus(), err.Error(), true
	}
	return 0, "", false
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg, ok := userError(err)
	if !ok {
		c.log.Error("console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		status, msg = http.StatusInternalServerError, "Something went wrong; it has been logged."
	}
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	c.render(w, r, s, status, "error", pageData{Title: http.StatusText(status), Error: msg})
}

// back redirects to url with err as a flash message when err is the user's
// to fix (a refused form), and returns other errors.
func back(w http.ResponseWriter, r *http.Request, s *session, url string, err error) error {
	if _, msg, ok := userError(err); ok {
		s.setFlash("error", msg)
		http.Redirect(w, r, url, http.StatusSeeOther)
		return nil
	}
	return err
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var funcs = template.FuncMap{
	"mask": httpapi.MaskToken,
	"time": func(t any) template.HTML {
		var v time.Time
		switch x := t.(type) {
		case time.Time:
			v = x
		case *time.Time:
			if x != nil {
				v = *x
			}
		}
		if v.IsZero() {
			return "—"
		}
		v = v.UTC()
		return template.HTML(`<time datetime="` + v.Format(time.RFC3339) + `">` + v.Format("2006-01-02 15:04:05Z") + `</time>`)
	},
	"date": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"isoTime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":   func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"deref": func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	},
	"ms": func(f float64) string {
		if f < 10 {
			return fmt.Sprintf("%.1f ms", f)
		}
		return fmt.Sprintf("%.0f ms", f)
	},
	"duration": func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return d.Round(time.Second).String()
	},
	"inc":   func(i int) int { return i + 1 },
	"join":  strings.Join,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + strings.ReplaceAll(s[1:], "_", " ")
	},
	"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"boolp": func(b *bool) bool { return b == nil || *b },
}
