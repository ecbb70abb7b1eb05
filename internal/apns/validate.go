package apns

import "fmt"

// maxDeviceTokenHex bounds the token we put in a request path. Apple says
// tokens are of variable length and not to hard-code their size (today 32
// bytes), so this is only a sanity limit on outside input, far above any
// token seen.
const maxDeviceTokenHex = 1024

// RequestError is a notification that APNs would refuse, found before it
// was sent. Reason is the APNs reason APNs would have answered, so callers
// can classify it with Classify(400, Reason) and show Message to a person.
type RequestError struct {
	Reason  string
	Message string
}

func (e *RequestError) Error() string {
	return "apns: " + e.Reason + ": " + e.Message
}

// Status is the HTTP status APNs sends with this reason (400 when unknown).
func (e *RequestError) Status() int {
	if r, ok := reasons[e.Reason]; ok {
		return r.status
	}
	return 400
}

func reqErr(reason, format string, args ...any) *RequestError {
	return &RequestError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// pushTypes are the apns-push-type values of the reference.
var pushTypes = map[string]bool{
	PushTypeAlert: true, PushTypeBackground: true, PushTypeVoIP: true,
	"complication": true, "fileprovider": true, "mdm": true, "location": true,
	"liveactivity": true, "pushtotalk": true, "widgets": true, "controls": true,
}

// ValidateNotification checks n against the rules APNs enforces, so that a
// request APNs would refuse is never sent: APNs slows down and drops
// providers that send many bad requests. The error is a *RequestError.
func ValidateNotification(n *Notification) error {
	if n == nil {
		return reqErr("MissingDeviceToken", "no notification")
	}
	for _, check := range notificationChecks {
		if err := check(n); err != nil {
			return err
		}
	}
	return nil
}

// notificationChecks run in this order; the first failure is returned.
var notificationChecks = []func(*Notification) *RequestError{
	checkDeviceToken, checkPushType, checkPayload, checkTopic,
	checkID, checkExpiration, checkPriority, checkCollapseID,
}

func checkDeviceToken(n *Notification) *RequestError {
	t := n.DeviceToken
	switch {
	case t == "":
		return reqErr("MissingDeviceToken", "the device token is empty")
	case len(t) > maxDeviceTokenHex:
		return reqErr("BadDeviceToken", "the device token is %d characters; at most %d are accepted", len(t), maxDeviceTokenHex)
	case len(t)%2 != 0:
		return reqErr("BadDeviceToken", "the device token has an odd number of hex digits (%d)", len(t))
	}
	for i := 0; i < len(t); i++ {
		if !isHex(t[i]) {
			return reqErr("BadDeviceToken", "the device token is not hex: character %d is %q", i, t[i])
		}
	}
	return nil
}

func checkPushType(n *Notification) *RequestError {
	if !pushTypes[n.PushType] {
		return reqErr("InvalidPushType", "push type %q is not one APNs knows", n.PushType)
	}
	return nil
}

func checkPayload(n *Notification) *RequestError {
	size := len(n.Payload)
	if size == 0 {
		return reqErr("PayloadEmpty", "the payload is empty")
	}
	limit := MaxPayload
	if n.PushType == PushTypeVoIP {
		limit = MaxVoIPPayload
	}
	if size <= limit {
		return nil
	}
	if n.PushType == PushTypeVoIP {
		return reqErr("PayloadTooLarge", "payload is %d bytes; APNs allows %d for VoIP", size, MaxVoIPPayload)
	}
	return reqErr("PayloadTooLarge", "payload is %d bytes; APNs allows %d (%d for VoIP)", size, MaxPayload, MaxVoIPPayload)
}

func checkTopic(n *Notification) *RequestError {
	if !isHeaderText(n.Topic) {
		return reqErr("BadTopic", "topic %q has characters a header cannot carry", n.Topic)
	}
	return nil
}

func checkID(n *Notification) *RequestError {
	if n.ID != "" && !isCanonicalUUID(n.ID) {
		return reqErr("BadMessageId", "apns-id %q is not a canonical lowercase UUID (8-4-4-4-12)", n.ID)
	}
	return nil
}

func checkExpiration(n *Notification) *RequestError {
	if n.Expiration != nil && n.Expiration.Unix() < 0 {
		return reqErr("BadExpirationDate", "expiration %s is before 1970", n.Expiration.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

func checkPriority(n *Notification) *RequestError {
	switch n.Priority {
	case 0, 1, 5, 10:
	default:
		return reqErr("BadPriority", "priority %d is not 10, 5 or 1", n.Priority)
	}
	// Apple: a background push is always priority 5; "using priority 10 is an error".
	if n.PushType == PushTypeBackground && n.Priority == 10 {
		return reqErr("BadPriority", "a background push must have priority 5, not 10")
	}
	return nil
}

func checkCollapseID(n *Notification) *RequestError {
	if len(n.CollapseID) > MaxCollapseID {
		return reqErr("BadCollapseId", "collapse ID is %d bytes; APNs allows %d", len(n.CollapseID), MaxCollapseID)
	}
	if !isHeaderText(n.CollapseID) {
		return reqErr("BadCollapseId", "collapse ID has characters a header cannot carry")
	}
	return nil
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// isCanonicalUUID accepts exactly xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in
// lowercase hex, which is what APNs asks for in apns-id.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
				return false
			}
		}
	}
	return true
}

// isHeaderText reports whether s can go in a header value unchanged:
// printable ASCII only. Topics and collapse IDs are bundle IDs and short
// keys, so anything else is a bug upstream.
func isHeaderText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
