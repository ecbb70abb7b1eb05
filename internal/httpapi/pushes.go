package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/store"
)

// maxBatchUsers is the push pipeline's batch bound (Tencent's: 1000 users).
const maxBatchUsers = push.MaxBatchUsers

// PushRequest is the body of POST /v1/apps/{sdkappid}/pushes: one user or
// a batch, plus the push options.
type PushRequest struct {
	User  string   `json:"user,omitempty"`
	Users []string `json:"users,omitempty"`
	push.Request
}

// PushResult is the answer: one push ID for "user", or one per user in
// order for "users".
type PushResult struct {
	PushID  string   `json:"push_id,omitempty"`
	PushIDs []string `json:"push_ids,omitempty"`
}

// SendPush validates and queues a push; it returns as soon as the push is
// in the outbox.
func (a *API) SendPush(ctx context.Context, sdkAppID int64, req PushRequest) (PushResult, error) {
	// Shed load first: while the outbox is full a refusal costs two atomic
	// loads, not a store query.
	if err := a.admitPush(); err != nil {
		return PushResult{}, err
	}
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return PushResult{}, err
	}
	req.Source = "" // "call" is the call service's, not an API caller's
	if (req.User == "") == (len(req.Users) == 0) {
		return PushResult{}, apiErr(http.StatusBadRequest, "bad_recipients", "send either \"user\" or \"users\" (up to %d)", maxBatchUsers)
	}
	if req.User != "" {
		if err := checkUserID(req.User); err != nil {
			return PushResult{}, err
		}
		id, err := a.cfg.Push.Submit(ctx, sdkAppID, req.User, req.Request)
		return PushResult{PushID: id}, pushError(err)
	}
	if len(req.Users) > maxBatchUsers {
		return PushResult{}, apiErr(http.StatusBadRequest, "too_many_users", "a batch push has at most %d users; got %d", maxBatchUsers, len(req.Users))
	}
	if req.Token != "" {
		return PushResult{}, apiErr(http.StatusBadRequest, "bad_recipients", "\"token\" picks one device of one user: use it with \"user\"")
	}
	for _, u := range req.Users {
		if err := checkUserID(u); err != nil {
			return PushResult{}, err
		}
	}
	ids, err := a.cfg.Push.SubmitBatch(ctx, sdkAppID, req.Users, req.Request)
	return PushResult{PushIDs: ids}, pushError(err)
}

// pushError gives a push.Error its API status and code.
func pushError(err error) error {
	var pe *push.Error
	if !errors.As(err, &pe) {
		return err
	}
	status := http.StatusBadRequest
	switch pe.Code {
	case "payload_too_large":
		status = http.StatusRequestEntityTooLarge
	case "token_not_registered":
		status = http.StatusNotFound
	case push.CodeOutboxFull:
		// The server is overloaded (APNs slow or down), not the client
		// wrong: 503 with Retry-After, which setRetryAfter adds.
		e := &Error{Status: http.StatusServiceUnavailable, Code: pe.Code, Message: pe.Message}
		return &retryLaterError{api: e, after: pe.RetryAfter}
	}
	return &Error{Status: status, Code: pe.Code, Message: pe.Message}
}

// retryLaterError is an API error answered with Retry-After; it unwraps to
// the *Error the error writer sends.
type retryLaterError struct {
	api   *Error
	after time.Duration
}

func (e *retryLaterError) Error() string { return e.api.Error() }
func (e *retryLaterError) Unwrap() error { return e.api }

// admitter is the push pipeline's backpressure check (*push.Service has
// it); a Pusher without it admits everything.
type admitter interface{ Admit() error }

// admitPush refuses new work with outbox_full while the push outbox is over
// its limit. The call API asks it before creating a call, so a call that
// could not ring anyone offline is refused whole, not half made.
func (a *API) admitPush() error {
	if ad, ok := a.cfg.Push.(admitter); ok {
		return pushError(ad.Admit())
	}
	return nil
}

// setRetryAfter adds Retry-After (whole seconds, at least 1) to an answer
// refused for outbox_full. The error writer sends the headers set on w.
func setRetryAfter(w http.ResponseWriter, err error) {
	var re *retryLaterError
	if !errors.As(err, &re) {
		return
	}
	secs := max(1, int64((re.after+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// PushTrace returns a push with every attempt and its diagnosis.
func (a *API) PushTrace(ctx context.Context, sdkAppID int64, pushID string) (*push.Trace, error) {
	t, err := a.cfg.Push.Trace(ctx, sdkAppID, pushID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, "push_not_found", "app %d has no push %q", sdkAppID, pushID)
	}
	return t, err
}

// RecentPushes lists an app's newest pushes, of one user or all.
func (a *API) RecentPushes(ctx context.Context, sdkAppID int64, userID string, limit int) ([]push.Summary, error) {
	if err := a.requireApp(ctx, sdkAppID); err != nil {
		return nil, err
	}
	return a.cfg.Push.Recent(ctx, sdkAppID, userID, limit)
}

func (a *API) createPush(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	req, err := decodeJSON[PushRequest](w, r, maxJSONBody)
	if err != nil {
		return err
	}
	res, err := a.SendPush(r.Context(), id, req)
	if err != nil {
		setRetryAfter(w, err)
		return err
	}
	writeJSON(w, http.StatusAccepted, res)
	return nil
}

func (a *API) getPush(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	t, err := a.PushTrace(r.Context(), id, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) listPushes(w http.ResponseWriter, r *http.Request) error {
	id, err := pathAppID(r)
	if err != nil {
		return err
	}
	user := r.URL.Query().Get("user")
	if user != "" {
		if err := checkUserID(user); err != nil {
			return err
		}
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return apiErr(http.StatusBadRequest, "bad_limit", "limit is 1 to 100")
		}
		limit = n
	}
	list, err := a.RecentPushes(r.Context(), id, user, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"pushes": list})
	return nil
}
