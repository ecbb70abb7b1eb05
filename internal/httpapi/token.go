package httpapi

import (
	"net/http"
	"strings"

	"github.com/ringd/ringd/internal/calls"
)

// Device tokens are hex of any even length (Apple: "do not hard-code their
// size"); these bounds only keep garbage out.
const (
	minTokenHex = 16
	maxTokenHex = 512
)

// ParseDeviceToken checks a device token and returns it in lowercase. It
// accepts the common ways apps print a token: with spaces or inside <>.
func ParseDeviceToken(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < minTokenHex || len(s) > maxTokenHex {
		return "", apiErr(http.StatusBadRequest, "bad_token", "a device token is %d to %d hex characters; got %d", minTokenHex, maxTokenHex, len(s))
	}
	if len(s)%2 != 0 {
		return "", apiErr(http.StatusBadRequest, "bad_token", "a device token has an even number of hex characters; got %d", len(s))
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", apiErr(http.StatusBadRequest, "bad_token", "a device token is hex; character %d is %q (send the token as hex, not base64)", i, c)
		}
	}
	return string(b), nil
}

// MaskToken shows a token in logs and pages as its first and last four characters.
func MaskToken(t string) string {
	if len(t) <= 8 {
		return t
	}
	return t[:4] + "…" + t[len(t)-4:]
}

// checkUserID applies the one user-ID rule (calls.ValidUserID).
func checkUserID(u string) error {
	if !calls.ValidUserID(u) {
		return apiErr(http.StatusBadRequest, "bad_user", "a user ID is 1 to 32 printable ASCII characters; got %q", u)
	}
	return nil
}
