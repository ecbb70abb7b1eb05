package apns

import (
	"encoding/json"
	"time"
)

const (
	// maxErrorBody bounds what is read of an answer's body: APNs sends a
	// few dozen bytes of JSON; anything longer is not APNs.
	maxErrorBody = 4 << 10
	// maxReasonLen bounds a reason kept from the body (it goes into logs
	// and the store); Apple's longest is 27 characters.
	maxReasonLen = 128
)

// newResponse turns one answer into a Response. A missing or invalid
// body leaves Reason empty; Classify then falls back on the status.
func newResponse(r h2Result) *Response {
	resp := &Response{Status: r.status, APNsID: r.apnsID, UniqueID: r.uniqueID}
	if len(r.body) > 0 {
		resp.Reason, resp.Timestamp = parseErrorBody(r.body)
	}
	return resp
}

// parseErrorBody reads {"reason":"...","timestamp":<ms>}. The timestamp
// (410 only) is in milliseconds since the epoch.
func parseErrorBody(b []byte) (reason string, ts time.Time) {
	var body struct {
		Reason    string      `json:"reason"`
		Timestamp json.Number `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return "", time.Time{}
	}
	reason = body.Reason
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	if ms, err := body.Timestamp.Int64(); err == nil && ms > 0 {
		ts = time.UnixMilli(ms)
	}
	return reason, ts
}
