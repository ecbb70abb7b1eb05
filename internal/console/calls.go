package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/store"
)

type callRow struct {
	calls.Call
	Talked time.Duration // from the answer to the end (or now)
	Rang   time.Duration // from the invite to the answer or end
}

type callsView struct {
	User  string
	Calls []callRow
}

func (c *Console) callsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	v := callsView{User: strings.TrimSpace(r.URL.Query().Get("user"))}
	d := pageData{Title: "Calls", Nav: "calls", App: app, Data: &v}
	list, err := c.cfg.Services.ListCalls(r.Context(), app.SDKAppID, store.CallFilter{UserID: v.User, Limit: 50})
	if err != nil {
		if _, msg, ok := userError(err); !ok {
			return err
		} else {
			d.Error = msg
		}
	}
	now := c.cfg.Now()
	for _, call := range list {
		row := callRow{Call: call}
		end := now
		if call.EndedAt != nil {
			end = *call.EndedAt
		}
		if call.AnsweredAt != nil {
			row.Talked = end.Sub(*call.AnsweredAt)
			row.Rang = call.AnsweredAt.Sub(call.CreatedAt)
		} else {
			row.Rang = end.Sub(call.CreatedAt)
		}
		v.Calls = append(v.Calls, row)
	}
	c.render(w, r, s, http.StatusOK, "calls", d)
	return nil
}
