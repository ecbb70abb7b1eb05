package httpapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error: a stable code clients switch on, the HTTP status,
// and a message that says what to fix. See docs/api.md for the full list.
type Error struct {
	Status  int    `json:"http"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errors that several handlers return.
var (
	errUnauthorized   = apiErr(http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <admin token> or Authorization: UserSig <usersig>")
	errAdminOnly      = apiErr(http.StatusForbidden, "admin_required", "this endpoint needs the admin token or an app-admin UserSig")
	errAppNotFound    = apiErr(http.StatusNotFound, "app_not_found", "no app with this SDKAppID")
	errStoreBusy      = apiErr(http.StatusServiceUnavailable, "store_unavailable", "the database is unavailable; retry shortly")
	errOverloaded     = apiErr(http.StatusServiceUnavailable, "overloaded", "the server could not finish in time under load; retry after the Retry-After delay")
	errInternal       = apiErr(http.StatusInternalServerError, "internal", "internal error; it has been logged")
	errMethodNotFound = apiErr(http.StatusNotFound, "not_found", "no such endpoint; see docs/api.md")
)

// asAPIError turns any handler error into the Error to send; unknown errors
// become a logged 500.
func asAPIError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// HTTPStatus and ErrorCode let other packages (the WebSocket gateway)
// answer with the same status and code.
func (e *Error) HTTPStatus() int   { return e.Status }
func (e *Error) ErrorCode() string { return e.Code }
