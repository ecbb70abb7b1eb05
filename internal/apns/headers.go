package apns

import (
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Request header names, lowercase as HTTP/2 sends them.
const (
	hdrPushType      = "apns-push-type"
	hdrTopic         = "apns-topic"
	hdrID            = "apns-id"
	hdrExpiration    = "apns-expiration"
	hdrPriority      = "apns-priority"
	hdrCollapseID    = "apns-collapse-id"
	hdrAuthorization = "authorization"
	hdrContentType   = "content-type"
)

// devicePath is the request's :path, /3/device/<token>.
func devicePath(n *Notification) string { return "/3/device/" + n.DeviceToken }

// requestFields are the headers of n's request, without the pseudo-headers
// and content-length, which the connection adds. bearer is "bearer <jwt>"
// for token auth, empty for certificate auth. No user-agent: APNs does not
// want one and it costs bytes on every request. n must have passed
// ValidateNotification.
func requestFields(n *Notification, bearer string) []hpack.HeaderField {
	f := make([]hpack.HeaderField, 0, 8)
	f = append(f, hpack.HeaderField{Name: hdrContentType, Value: "application/json"},
		hpack.HeaderField{Name: hdrPushType, Value: n.PushType})
	if n.Topic != "" {
		f = append(f, hpack.HeaderField{Name: hdrTopic, Value: n.Topic})
	}
	if n.ID != "" {
		// Unique per request: kept out of the HPACK table (see writeRequest).
		f = append(f, hpack.HeaderField{Name: hdrID, Value: n.ID, Sensitive: true})
	}
	if n.Expiration != nil {
		f = append(f, hpack.HeaderField{Name: hdrExpiration, Value: expirationHeader(*n.Expiration)})
	}
	if n.Priority != 0 {
		f = append(f, hpack.HeaderField{Name: hdrPriority, Value: strconv.Itoa(n.Priority)})
	}
	if n.CollapseID != "" {
		f = append(f, hpack.HeaderField{Name: hdrCollapseID, Value: n.CollapseID})
	}
	if bearer != "" {
		// Indexed, not marked sensitive: the same token goes with every
		// request of the connection for up to an hour, and HPACK then
		// sends it once instead of ~250 bytes each time.
		f = append(f, hpack.HeaderField{Name: hdrAuthorization, Value: bearer})
	}
	return f
}

// expirationHeader formats apns-expiration in UNIX seconds. time.Unix(0, 0)
// gives "0": deliver now or never, which a ringing call needs and which
// sideshow/apns2 cannot send (it drops the header for Unix(0)).
func expirationHeader(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}
