package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/store"
)

// CallService is the part of the call service the API uses.
type CallService interface {
	Invite(ctx context.Context, a calls.Actor, req calls.InviteRequest) (*calls.Call, error)
	Cancel(ctx context.Context, a calls.Actor, callID string) (*calls.Call, error)
	End(ctx context.Context, sdkAppID int64, callID, requestID string) (*calls.Call, error)
	Get(ctx context.Context, sdkAppID int64, callID string) (*calls.Call, error)
	GetForUser(ctx context.Context, sdkAppID int64, userID, callID string) (*calls.Call, error)
	List(ctx context.Context, sdkAppID int64, f store.CallFilter) ([]calls.Call, error)
}

// StartCall is the body of POST /v1/apps/{sdkappid}/calls: a call placed
// by the app server on behalf of a caller, as Twilio and Stream allow.
type StartCall struct {
	Caller string `json:"caller"`
	calls.InviteRequest
}

// callError gives a calls.Error its API status and code.
func callError(err error) error {
	var ce *calls.Error
	if errors.As(err, &ce) {
		status := ce.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return &Error{Status: status, Code: ce.Code, Message: ce.Message}
	}
	if errors.Is(err, store.ErrNotFound) {
		return apiErr(http.StatusNotFound, calls.CodeCallNotFound, "no such call")
	}
	return err
}

// PlaceCall starts a call for the caller; requestID makes retries safe.
func (a *API) PlaceCall(ctx context.Context, sdkAppID int64, req StartCall, requestID string) (*calls.Call, error) {
	if err := a.admitPush(); err != nil {
		return nil, err // outbox_full: the invitees could not be rung offline
	}
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	if err := checkUserID(req.Caller); err != nil {
		return nil, err
	}
	c, err := a.cfg.Calls.Invite(ctx, calls.Actor{SDKAppID: sdkAppID, UserID: req.Caller, RequestID: requestID}, req.InviteRequest)
	return c, callError(err)
}

// CancelCall cancels a ringing call on behalf of its caller.
func (a *API) CancelCall(ctx context.Context, sdkAppID int64, callID, requestID string) (*calls.Call, error) {
	c, err := a.cfg.Calls.Get(ctx, sdkAppID, callID)
	if err != nil {
		return nil, callError(err)
	}
	c, err = a.cfg.Calls.Cancel(ctx, calls.Actor{SDKAppID: sdkAppID, UserID: c.Caller, RequestID: requestID}, callID)
	return c, callError(err)
}

// EndCall ends a call in any state, for the app server.
func (a *API) EndCall(ctx context.Context, sdkAppID int64, callID, requestID string) (*calls.Call, error) {
	c, err := a.cfg.Calls.End(ctx, sdkAppID, callID, requestID)
	return c, callError(err)
}

// GetCall returns one call of the app.
func (a *API) GetCall(ctx context.Context, sdkAppID int64, callID string) (*calls.Call, error) {
	c, err := a.cfg.Calls.Get(ctx, sdkAppID, callID)
	return c, callError(err)
}

// ListCalls lists the app's calls, newest first.
func (a *API) ListCalls(ctx context.Context, sdkAppID int64, f store.CallFilter) ([]calls.Call, error) {
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	list, err := a.cfg.Calls.List(ctx, sdkAppID, f)
	return list, callError(err)
}

func (a *API) startCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	req, err := decodeJSON[StartCall](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	c, err := a.PlaceCall(r.Context(), id, req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		setRetryAfter(w, err)
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"call_id": c.CallID, "call": c})
	return nil
}

func (a *API) cancelCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	c, err := a.CancelCall(r.Context(), id, r.PathValue("call_id"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *API) endCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	c, err := a.EndCall(r.Context(), id, r.PathValue("call_id"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *API) getCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	c, err := a.GetCall(r.Context(), id, r.PathValue("call_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *API) listCalls(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	f, err := callFilter(r)
	if err != nil {
		return err
	}
	list, err := a.ListCalls(r.Context(), id, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": list})
	return nil
}

func callFilter(r *http.Request) (store.CallFilter, error) {
	q := r.URL.Query()
	f := store.CallFilter{UserID: q.Get("user"), Limit: 100}
	if f.UserID != "" {
		if err := checkUserID(f.UserID); err != nil {
			return f, err
		}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, apiErr(http.StatusBadRequest, "bad_time", "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, apiErr(http.StatusBadRequest, "bad_limit", "limit is 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

// myCall serves GET /v1/me/calls/{call_id}: an app just woken by a push
// asks whether the call still rings before it connects.
func (a *API) myCall(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	c, err := a.cfg.Calls.GetForUser(r.Context(), p.sdkAppID, p.userID, r.PathValue("call_id"))
	if err != nil {
		return callError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
