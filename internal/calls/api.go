// Package calls is ringd's call service: the server-side state machine of
// a call invitation (invite, accept, reject, cancel, hang up, busy,
// timeout; 1:1 and group; every device of a user), its timers, the pushes
// that ring devices that are not in the foreground, and what a device is
// told when it reconnects.
package calls

import (
	"context"
	"time"

	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/store"
)

// Media of a call.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// Call states (the same strings as store.CallRinging etc.).
const (
	StateRinging  = "ringing"
	StateAnswered = "answered"
	StateEnded    = "ended"
)

// Outcomes of a participant. Device outcomes add answered_elsewhere and
// rejected_elsewhere for a user's other devices.
const (
	OutcomeCaller            = "caller"  // the caller, while in the call
	OutcomeRinging           = "ringing" // an invitee not answered yet
	OutcomeAccepted          = "accepted"
	OutcomeDeclined          = "declined"
	OutcomeBusy              = "busy"
	OutcomeTimeout           = "timeout"
	OutcomeCancelled         = "cancelled"
	OutcomeLeft              = "left"
	OutcomeAnsweredElsewhere = "answered_elsewhere"
	OutcomeRejectedElsewhere = "rejected_elsewhere"
)

// End reasons.
const (
	EndCancelled = "cancelled" // the caller cancelled before anyone answered
	EndTimeout   = "timeout"   // nobody answered in time
	EndDeclined  = "declined"  // every invitee declined (or was busy, see EndBusy)
	EndBusy      = "busy"      // every invitee was busy
	EndHangup    = "hangup"    // fewer than two participants remained after an answer
	EndServer    = "ended_by_server"
)

// Event types, sent in order (Seq) to every connected device of every participant.
const (
	EventInvited           = "call.invited"            // to invitees: a call rings (with time left)
	EventAccepted          = "call.accepted"           // User accepted
	EventRejected          = "call.rejected"           // User declined or was busy (Reason)
	EventCancelled         = "call.cancelled"          // the caller cancelled
	EventTimeout           = "call.timeout"            // User's ringing timed out (User empty: everyone's)
	EventLeft              = "call.left"               // User hung up / left
	EventInviteesAdded     = "call.invitees_added"     // invite_more
	EventEnded             = "call.ended"              // the call is over (Reason)
	EventAnsweredElsewhere = "call.answered_elsewhere" // to the user's other devices
	EventRejectedElsewhere = "call.rejected_elsewhere" // to the user's other devices
	EventState             = "call.state"              // a snapshot, sent on sync
)

// PushOptions say how an invitation rings devices that are not in the
// foreground. Empty fields take the app's settings.
type PushOptions struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Sound string `json:"sound,omitempty"`
	// VoIP false forces alert pushes; nil or true uses a device's PushKit
	// token when it has one.
	VoIP *bool `json:"voip,omitempty"`
}

// InviteRequest starts a call.
type InviteRequest struct {
	Invitees   []string    `json:"invitees"`
	Media      string      `json:"media"`             // audio or video
	Timeout    int         `json:"timeout,omitempty"` // ring timeout in seconds, 0 < t <= 300; 0 = app default
	GroupID    string      `json:"group_id,omitempty"`
	RoomID     string      `json:"room_id,omitempty"`
	Data       string      `json:"data,omitempty"` // at most 4 KiB, for the app
	CallerName string      `json:"caller_name,omitempty"`
	Push       PushOptions `json:"push,omitempty"`
}

// Actor is who asks for a change: a user on a device (DeviceID may be
// empty for app servers), with an idempotency key.
type Actor struct {
	SDKAppID  int64
	UserID    string
	DeviceID  string
	RequestID string // same RequestID from the same user: the same answer, no second change
}

// Call is a call as clients and the API see it.
type Call struct {
	CallID     string     `json:"call_id"`
	SDKAppID   int64      `json:"sdkappid"`
	UUID       string     `json:"uuid"`    // the CallKit UUID (v4, canonical), also in the ring push
	Timeout    int        `json:"timeout"` // ring timeout in seconds
	Caller     string     `json:"caller"`
	CallerName string     `json:"caller_name,omitempty"`
	GroupID    string     `json:"group_id,omitempty"`
	Media      string     `json:"media"`
	RoomID     string     `json:"room_id,omitempty"`
	Data       string     `json:"data,omitempty"`
	State      string     `json:"state"`
	EndReason  string     `json:"end_reason,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	Seq        int64      `json:"seq"`
	CallerLeft bool       `json:"caller_left,omitempty"`
	Invitees   []Invitee  `json:"invitees"`
	PushIDs    []string   `json:"push_ids"`
}

// Invitee is one invited user.
type Invitee struct {
	User         string          `json:"user"`
	Outcome      string          `json:"outcome"`
	InvitedAt    time.Time       `json:"invited_at"`
	RingDeadline time.Time       `json:"ring_deadline"`
	RespondedAt  *time.Time      `json:"responded_at,omitempty"`
	LeftAt       *time.Time      `json:"left_at,omitempty"`
	DeviceID     string          `json:"device_id,omitempty"` // the device that answered
	Devices      []DeviceOutcome `json:"devices,omitempty"`
	Pushes       []PushedDevice  `json:"pushes,omitempty"`
	PushError    string          `json:"push_error,omitempty"` // the last push that could not be submitted
}

// DeviceOutcome is what one device of an invitee saw.
type DeviceOutcome struct {
	DeviceID string `json:"device_id"`
	Outcome  string `json:"outcome"`
}

// PushedDevice records a push sent to ring (or tell of a missed call).
type PushedDevice struct {
	PushID string `json:"push_id"`
	Kind   string `json:"kind"` // "ring" or "missed"
}

// Event is one change of a call, delivered to devices in Seq order.
type Event struct {
	Type       string    `json:"type"`
	CallID     string    `json:"call_id"`
	Seq        int64     `json:"seq"`
	At         time.Time `json:"at"`
	User       string    `json:"user,omitempty"`
	DeviceID   string    `json:"device_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	TimeLeftMS int64     `json:"time_left_ms,omitempty"` // call.invited: how long it still rings for this user
	Call       *Call     `json:"call"`                   // the call after the change
}

// Error is a refused request. Code is stable; Status is the HTTP status
// the REST API uses for it.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Stable error codes.
const (
	CodeCallNotFound    = "call_not_found"    // 404
	CodeNotParticipant  = "not_participant"   // 403: acting on a call you are not in
	CodeNotCaller       = "not_caller"        // 403: only the caller may cancel
	CodeAlreadyAnswered = "call_answered"     // 409: e.g. cancelling an answered call
	CodeCallEnded       = "call_ended"        // 409: acting on an ended call (message says how it ended)
	CodeNotRinging      = "not_ringing"       // 409: accepting/rejecting when your invitation no longer rings
	CodeNotInCall       = "not_in_call"       // 409: hanging up a call you are not in
	CodeBadInvitees     = "bad_invitees"      // 400: empty, duplicates, self, bad user IDs
	CodeTooManyInvitees = "too_many_invitees" // 400
	CodeBadMedia        = "bad_media"         // 400
	CodeBadTimeout      = "bad_timeout"       // 400
	CodeDataTooLarge    = "data_too_large"    // 400
	CodeBadField        = "bad_field"         // 400: group/room ID, caller name, reason, push text too long or invalid
	CodeRateLimited     = "rate_limited"      // 429: too many invites from this user
	CodeNotGroupCall    = "not_group_call"    // 409: invite_more on a 1:1 call
	CodeUnavailable     = "unavailable"       // 503: the service is shutting down or the call is not loaded here
)

// Pusher is what the call service needs of the push pipeline.
type Pusher interface {
	// Stage readies a push for the user, to regs when the change has just
	// read the user's registrations (nil: the pipeline reads them). The
	// push is written with the call's change (Commit), or dropped (Drop).
	Stage(ctx context.Context, sdkAppID int64, userID string, regs []store.Registration, req push.Request) (*push.Staged, error)
	// Commit runs write, which writes each group's pushes with its call
	// change or not at all and says which groups it wrote; the pushes
	// written are then sent, the others dropped.
	Commit(ctx context.Context, groups [][]*push.Staged, write func() []bool)
	// Drop gives back what staged pushes hold when none will be written.
	Drop(staged []*push.Staged)
	// Expire marks the pending deliveries of these pushes expired, so a call
	// that stopped ringing rings nothing later.
	Expire(ctx context.Context, pushIDs []string, reason string) error
}

// Emitter receives call events for webhooks (call.started, call.answered,
// call.ended, call.missed). It must not block.
type Emitter interface {
	Emit(ctx context.Context, sdkAppID int64, eventType string, payload any)
}

// Webhook event types given to the Emitter.
const (
	WebhookStarted  = "call.started"  // payload: *Call, after the invite
	WebhookAnswered = "call.answered" // payload: *Call, on the first accept
	WebhookEnded    = "call.ended"    // payload: *Call with EndReason and every invitee's outcome
	WebhookMissed   = "call.missed"   // payload: Missed, per invitee that timed out or was cancelled while ringing
)

// Missed is the payload of a call.missed webhook: the call and the user
// who missed it.
type Missed struct {
	Call
	User string `json:"user"`
}

// Kinds of PushedDevice.
const (
	PushRing   = "ring"   // rang the invitee's devices (VoIP or alert)
	PushMissed = "missed" // "Missed call from …" alert
)

// Reasons of Reject.
const (
	RejectDeclined = "declined"
	RejectBusy     = "busy"
)

// Device states of DeviceStateChanged (the gateway's presence states).
const (
	DeviceForeground = "foreground"
	DeviceBackground = "background"
)
