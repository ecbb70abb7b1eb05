package push

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ringd/ringd/internal/apns"
)

// payloadLimit is Apple's size limit for a push type.
func payloadLimit(pushType string) int {
	if pushType == apns.PushTypeVoIP {
		return apns.MaxVoIPPayload
	}
	return apns.MaxPayload
}

// BuildPayload renders the APNs body of req for one push type (alert,
// background or voip) and refuses it with payload_too_large when it is over
// Apple's limit (4096 bytes, 5120 for VoIP). Keys come in a fixed order
// (aps, ext, then custom keys sorted) so equal requests give equal bytes.
//
// The JSON is written by hand rather than through maps and json.Marshal
// because this runs once per push type for every push of a fan-out.
func BuildPayload(req Request, pushType string) ([]byte, error) {
	if pushType != apns.PushTypeAlert && pushType != apns.PushTypeBackground && pushType != apns.PushTypeVoIP {
		return nil, fmt.Errorf("push: unknown push type %q", pushType)
	}
	b := make([]byte, 0, 128+len(req.Title)+len(req.Subtitle)+len(req.Body)+len(req.Ext)+customSize(req.Custom))
	b = append(b, `{"aps":{`...)
	b = appendAPS(b, req, pushType)
	b = append(b, '}')
	if req.Ext != "" {
		b = append(b, `,"ext":`...)
		b = appendString(b, req.Ext)
	}
	b, err := appendCustom(b, req.Custom)
	if err != nil {
		return nil, err
	}
	b = append(b, '}')
	if limit := payloadLimit(pushType); len(b) > limit {
		return nil, errorf(CodePayloadTooLarge, "the %s payload is %d bytes; APNs accepts at most %d: shorten title, body, ext or custom keys",
			pushType, len(b), limit)
	}
	return b, nil
}

// appendAPS writes the members of the aps dictionary. PushKit ignores the
// presentation keys, so a VoIP payload carries only the alert text (which
// the app may show in CallKit); a background push carries only
// content-available, as Apple asks.
func appendAPS(b []byte, req Request, pushType string) []byte {
	w := members{b: b}
	if pushType == apns.PushTypeBackground {
		w.key("content-available")
		w.b = append(w.b, '1')
		return w.b
	}
	if hasAlertText(req) {
		w.key("alert")
		w.b = appendAlert(w.b, req)
	}
	if pushType == apns.PushTypeVoIP {
		return w.b
	}
	if req.Badge != nil {
		w.key("badge")
		w.b = strconv.AppendInt(w.b, int64(*req.Badge), 10)
	}
	w.str("sound", req.Sound)
	w.str("thread-id", req.ThreadID)
	w.str("category", req.Category)
	if req.ContentAvailable {
		w.key("content-available")
		w.b = append(w.b, '1')
	}
	if req.MutableContent {
		w.key("mutable-content")
		w.b = append(w.b, '1')
	}
	w.str("interruption-level", req.InterruptionLevel)
	return w.b
}

func appendAlert(b []byte, req Request) []byte {
	w := members{b: append(b, '{')}
	w.str("title", req.Title)
	w.str("subtitle", req.Subtitle)
	w.str("body", req.Body)
	return append(w.b, '}')
}

// members writes the comma-separated members of one JSON object.
type members struct {
	b []byte
	n int
}

func (w *members) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

// str writes a string member, omitted when empty.
func (w *members) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendString(w.b, v)
}

func appendCustom(b []byte, custom map[string]json.RawMessage) ([]byte, error) {
	if len(custom) == 0 {
		return b, nil
	}
	keys := make([]string, 0, len(custom))
	for k := range custom {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if reservedKeys[k] {
			return nil, errorf(CodeBadCustom, "custom key %q is reserved: use the request's own fields", k)
		}
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, custom[k]); err != nil {
			return nil, errorf(CodeBadCustom, "custom key %q does not hold valid JSON", k)
		}
		b = buf.Bytes()
	}
	return b, nil
}

func customSize(custom map[string]json.RawMessage) int {
	n := 0
	for k, v := range custom {
		n += len(k) + len(v) + 4
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Like encoding/json it escapes
// control characters, U+2028 and U+2029, and replaces invalid UTF-8 with
// U+FFFD; unlike it, it leaves <, > and & alone, which APNs does not need
// escaped and which would cost payload bytes.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscapedByte(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = appendEscapedRune(b, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendEscapedByte(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

func appendEscapedRune(b []byte, r rune) []byte {
	if r == utf8.RuneError {
		return append(b, `\ufffd`...)
	}
	return append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
}
