package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/ringd/ringd/internal/calls"
)

// Protocol is the WebSocket subprotocol (and protocol version) the gateway
// speaks. docs/protocol.md describes it.
const Protocol = "ringd.v1"

// Request types a client sends.
const (
	TypeInvite     = "invite"
	TypeAccept     = "accept"
	TypeReject     = "reject"
	TypeCancel     = "cancel"
	TypeHangup     = "hangup"
	TypeInviteMore = "invite_more"
	TypeGetCall    = "get_call"
	TypeState      = "state"
	TypePing       = "ping"
	TypeLogout     = "logout"
)

// Frame types the server sends.
const (
	FrameHello     = "hello"
	FrameReply     = "reply"
	FrameEvent     = "event"
	FrameSyncDone  = "sync_done"
	FramePong      = "pong"
	FrameKicked    = "kicked"
	FrameReconnect = "reconnect"
)

// Error codes of the gateway itself; calls.Error codes pass through.
const (
	CodeBadFrame      = "bad_frame"       // not a JSON object with a valid id and type
	CodeUnknownType   = "unknown_type"    // type is not a request type of this protocol version
	CodeBadData       = "bad_data"        // data does not fit the request type
	CodeRateLimited   = "rate_limited"    // too many requests; retry the same id later
	CodeFrameTooLarge = "frame_too_large" // larger than hello.max_frame
	CodeUnavailable   = "unavailable"     // the server could not finish in time; retry the same id
	CodeInternal      = "internal"        // a bug or an outage; it has been logged
)

// Limits of request fields.
const (
	MaxIDLen       = 128
	MaxCallIDLen   = 128
	MaxDeviceIDLen = 128
)

// Request is one client frame.
type Request struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// FrameError is a refused client frame: the code and message of the error
// reply, and the request ID when it could be read.
type FrameError struct {
	ID      string
	Code    string
	Message string
}

func (e *FrameError) Error() string { return e.Code + ": " + e.Message }

func frameErr(id, code, format string, args ...any) *FrameError {
	return &FrameError{ID: id, Code: code, Message: fmt.Sprintf(format, args...)}
}

var requestTypes = map[string]bool{
	TypeInvite: true, TypeAccept: true, TypeReject: true, TypeCancel: true, TypeHangup: true,
	TypeInviteMore: true, TypeGetCall: true, TypeState: true, TypePing: true, TypeLogout: true,
}

// DecodeFrame parses a client frame strictly: one JSON object with the
// fields id, type and data only, no trailing data. id is required except on
// a heartbeat ping, 1..MaxIDLen bytes of printable ASCII. The type must be
// known. It does not look inside data; DecodeData does.
func DecodeFrame(b []byte) (Request, error) {
	var req Request
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return req, frameErr(peekID(b), CodeBadFrame, "a frame is a JSON object {\"id\",\"type\",\"data\"}")
	}
	if !utf8.Valid(b) {
		return req, frameErr(peekID(b), CodeBadFrame, "the frame is not valid UTF-8")
	}
	if overDepth(b, MaxFrameDepth) {
		return req, frameErr(peekID(b), CodeBadFrame, "the frame nests deeper than %d levels", MaxFrameDepth)
	}
	if err := strictUnmarshal(b, &req); err != nil {
		return Request{}, frameErr(peekID(b), CodeBadFrame, "invalid frame: %v", err)
	}
	if err := checkID(req.ID); err != nil {
		if req.ID == "" && req.Type == TypePing {
			return req, nil // heartbeat: answered with a pong frame, no reply
		}
		return Request{}, frameErr(safeID(req.ID), CodeBadFrame, "%v", err)
	}
	if req.Type == "" {
		return req, frameErr(req.ID, CodeBadFrame, "type is missing")
	}
	if !requestTypes[req.Type] {
		return req, frameErr(req.ID, CodeUnknownType, "unknown request type %q (protocol %s)", truncate(req.Type, 32), Protocol)
	}
	if len(req.Data) > 0 && !bytes.Equal(req.Data, []byte("null")) && req.Data[0] != '{' {
		return req, frameErr(req.ID, CodeBadData, "data must be a JSON object")
	}
	return req, nil
}

func checkID(id string) error {
	if id == "" {
		return errors.New("id is missing (a client-chosen string, unique per request)")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id is longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return errors.New("id must be printable ASCII without spaces")
		}
	}
	return nil
}

// safeID returns id when it may be echoed back, else "".
func safeID(id string) string {
	if checkID(id) != nil {
		return ""
	}
	return id
}

// peekID finds a top-level "id" string in a frame that is malformed,
// truncated or too large, so that the error reply can still name the
// request. It gives up quietly.
func peekID(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return ""
	}
	for range 16 { // the id is among the first keys of any sane frame
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		k, ok := key.(string)
		if !ok {
			return ""
		}
		if k == "id" {
			v, err := dec.Token()
			if s, ok := v.(string); err == nil && ok {
				return safeID(s)
			}
			return ""
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CallRef is the data of accept, cancel, hangup and get_call.
type CallRef struct {
	CallID string `json:"call_id"`
}

// RejectData is the data of reject.
type RejectData struct {
	CallID string `json:"call_id"`
	Reason string `json:"reason,omitempty"` // declined (default) or busy
}

// InviteMoreData is the data of invite_more.
type InviteMoreData struct {
	CallID   string   `json:"call_id"`
	Invitees []string `json:"invitees"`
}

// StateData is the data of state.
type StateData struct {
	State string `json:"state"`
}

// DecodeData parses and checks the data of a request of a known type and
// returns a pointer to calls.InviteRequest, CallRef, RejectData,
// InviteMoreData or StateData, or nil for ping and logout. Checks that
// belong to the call service (invitee lists, media, limits) stay there.
func DecodeData(typ string, data json.RawMessage) (any, error) {
	empty := len(bytes.TrimSpace(data)) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null"))
	decode := func(v any) error {
		if empty {
			return errors.New("data is missing")
		}
		if err := strictUnmarshal(data, v); err != nil {
			return fmt.Errorf("data: %v", err)
		}
		return nil
	}
	switch typ {
	case TypeInvite:
		var d calls.InviteRequest
		if err := decode(&d); err != nil {
			return nil, err
		}
		return &d, nil
	case TypeAccept, TypeCancel, TypeHangup, TypeGetCall:
		var d CallRef
		if err := decode(&d); err != nil {
			return nil, err
		}
		return &d, checkCallID(d.CallID)
	case TypeReject:
		var d RejectData
		if err := decode(&d); err != nil {
			return nil, err
		}
		switch d.Reason {
		case "":
			d.Reason = calls.OutcomeDeclined
		case calls.OutcomeDeclined, calls.OutcomeBusy:
		default:
			return nil, fmt.Errorf("reason must be %q or %q", calls.OutcomeDeclined, calls.OutcomeBusy)
		}
		return &d, checkCallID(d.CallID)
	case TypeInviteMore:
		var d InviteMoreData
		if err := decode(&d); err != nil {
			return nil, err
		}
		if len(d.Invitees) == 0 {
			return nil, errors.New("invitees is empty")
		}
		return &d, checkCallID(d.CallID)
	case TypeState:
		var d StateData
		if err := decode(&d); err != nil {
			return nil, err
		}
		if d.State != "foreground" && d.State != "background" {
			return nil, errors.New(`state must be "foreground" or "background"`)
		}
		return &d, nil
	case TypePing, TypeLogout:
		if !empty {
			var d struct{}
			if err := strictUnmarshal(data, &d); err != nil {
				return nil, fmt.Errorf("%s takes no data", typ)
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown request type %q", typ)
}

func checkCallID(id string) error {
	if id == "" {
		return errors.New("call_id is missing")
	}
	if len(id) > MaxCallIDLen {
		return fmt.Errorf("call_id is longer than %d bytes", MaxCallIDLen)
	}
	return nil
}

// Server frames.

type helloFrame struct {
	Type        string    `json:"type"`
	Protocol    string    `json:"protocol"`
	SessionID   string    `json:"session_id"`
	SDKAppID    int64     `json:"sdkappid"`
	UserID      string    `json:"user"`
	DeviceID    string    `json:"device_id"`
	State       string    `json:"state"`
	HeartbeatMS int64     `json:"heartbeat_ms"`
	MaxFrame    int       `json:"max_frame"`
	ServerTime  time.Time `json:"server_time"`
}

type replyFrame struct {
	Type   string      `json:"type"`
	ID     string      `json:"id"`
	OK     bool        `json:"ok"`
	Result any         `json:"result,omitempty"`
	Error  *replyError `json:"error,omitempty"`
}

type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type pongFrame struct {
	Type       string    `json:"type"`
	ServerTime time.Time `json:"server_time"`
}

type kickedFrame struct {
	Type     string `json:"type"`
	Reason   string `json:"reason"`
	DeviceID string `json:"device_id,omitempty"` // the device that logged in
}

type reconnectFrame struct {
	Type    string `json:"type"`
	AfterMS int64  `json:"after_ms"`
	Reason  string `json:"reason,omitempty"`
}

type syncDoneFrame struct {
	Type   string `json:"type"`
	Events int    `json:"events"` // how many event frames the sync held
}

// pingResult is the result of a ping request.
type pingResult struct {
	ServerTime time.Time `json:"server_time"`
}

// callResult is the result of every call request.
type callResult struct {
	Call *calls.Call `json:"call"`
}
