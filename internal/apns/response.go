package apns

import (
	"encoding/json"
	"io"
	"net/http"
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

// Response header names as x/net/http2 canonicalises them.
const (
	respHdrID       = "Apns-Id"
	respHdrUniqueID = "Apns-Unique-Id"
)

// readResponse turns one HTTP answer into a Response and closes its body.
// A missing, oversized or invalid body leaves Reason empty; Classify then
// falls back on the status.
func readResponse(res *http.Response) *Response {
	defer res.Body.Close()
	r := &Response{
		Status:   res.StatusCode,
		APNsID:   firstHeader(res.Header, respHdrID),
		UniqueID: firstHeader(res.Header, respHdrUniqueID),
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if err != nil || len(body) == 0 {
		return r
	}
	r.Reason, r.Timestamp = parseErrorBody(body)
	return r
}

func firstHeader(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
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
