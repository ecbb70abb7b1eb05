package apns

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Request header names, lowercase as HTTP/2 sends them. Setting them in
// http.Header under these keys skips canonicalisation on every request.
const (
	hdrPushType      = "apns-push-type"
	hdrTopic         = "apns-topic"
	hdrID            = "apns-id"
	hdrExpiration    = "apns-expiration"
	hdrPriority      = "apns-priority"
	hdrCollapseID    = "apns-collapse-id"
	hdrAuthorization = "authorization"
	hdrContentType   = "content-type"
	hdrUserAgent     = "user-agent"
)

var (
	contentTypeJSON = []string{"application/json"}
	// An empty user-agent makes x/net/http2 send none instead of
	// "Go-http-client/2.0": APNs does not want it and it costs bytes on
	// every request.
	noUserAgent = []string{""}
)

// newRequest builds POST /3/device/<token> on base ("https://host[:port]")
// with the headers of n. bearer is "bearer <jwt>" for token auth, empty for
// certificate auth. n must have passed ValidateNotification.
func newRequest(ctx context.Context, base string, n *Notification, bearer string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/3/device/"+n.DeviceToken, bytes.NewReader(n.Payload))
	if err != nil {
		return nil, fmt.Errorf("apns: build request: %w", err)
	}
	setHeaders(req.Header, n, bearer)
	return req, nil
}

func setHeaders(h http.Header, n *Notification, bearer string) {
	h[hdrContentType] = contentTypeJSON
	h[hdrUserAgent] = noUserAgent
	h[hdrPushType] = []string{n.PushType}
	if n.Topic != "" {
		h[hdrTopic] = []string{n.Topic}
	}
	if n.ID != "" {
		h[hdrID] = []string{n.ID}
	}
	if n.Expiration != nil {
		h[hdrExpiration] = []string{expirationHeader(*n.Expiration)}
	}
	if n.Priority != 0 {
		h[hdrPriority] = []string{strconv.Itoa(n.Priority)}
	}
	if n.CollapseID != "" {
		h[hdrCollapseID] = []string{n.CollapseID}
	}
	if bearer != "" {
		h[hdrAuthorization] = []string{bearer}
	}
}

// expirationHeader formats apns-expiration in UNIX seconds. time.Unix(0, 0)
// gives "0": deliver now or never, which a ringing call needs and which
// sideshow/apns2 cannot send (it drops the header for Unix(0)).
func expirationHeader(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}
