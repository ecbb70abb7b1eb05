package apnssim

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Apple's reasons, spelled as APNs sends them.
const (
	ReasonBadCollapseID               = "BadCollapseId"
	ReasonBadDeviceToken              = "BadDeviceToken"
	ReasonBadExpirationDate           = "BadExpirationDate"
	ReasonBadMessageID                = "BadMessageId"
	ReasonBadPriority                 = "BadPriority"
	ReasonBadTopic                    = "BadTopic"
	ReasonDeviceTokenNotForTopic      = "DeviceTokenNotForTopic"
	ReasonDuplicateHeaders            = "DuplicateHeaders"
	ReasonInvalidPushType             = "InvalidPushType"
	ReasonMissingDeviceToken          = "MissingDeviceToken"
	ReasonMissingTopic                = "MissingTopic"
	ReasonPayloadEmpty                = "PayloadEmpty"
	ReasonTopicDisallowed             = "TopicDisallowed"
	ReasonBadCertificate              = "BadCertificate"
	ReasonBadCertificateEnvironment   = "BadCertificateEnvironment"
	ReasonExpiredProviderToken        = "ExpiredProviderToken"
	ReasonInvalidProviderToken        = "InvalidProviderToken"
	ReasonMissingProviderToken        = "MissingProviderToken"
	ReasonUnrelatedKeyIDInToken       = "UnrelatedKeyIdInToken"
	ReasonBadEnvironmentKeyIDInToken  = "BadEnvironmentKeyIdInToken"
	ReasonBadPath                     = "BadPath"
	ReasonMethodNotAllowed            = "MethodNotAllowed"
	ReasonUnregistered                = "Unregistered"
	ReasonPayloadTooLarge             = "PayloadTooLarge"
	ReasonTooManyProviderTokenUpdates = "TooManyProviderTokenUpdates"
	ReasonTooManyRequests             = "TooManyRequests"
	ReasonInternalServerError         = "InternalServerError"
	ReasonServiceUnavailable          = "ServiceUnavailable"
)

// Payload limits: 4096 bytes, 5120 for VoIP.
const (
	MaxPayload     = 4096
	MaxVoIPPayload = 5120
	MaxCollapseID  = 64
	maxTopicLen    = 255
	maxTokenHex    = 2 * MaxTokenBytes
)

const devicePath = "/3/device/"

// rejection is an error answer: status, reason and, for 410, a timestamp.
type rejection struct {
	status    int
	reason    string
	timestamp int64 // unix milliseconds, 410 only
}

// rejections are shared values so the hot path does not allocate them.
var rejections = func() map[string]*rejection {
	m := make(map[string]*rejection)
	add := func(status int, reasons ...string) {
		for _, r := range reasons {
			m[r] = &rejection{status: status, reason: r}
		}
	}
	add(http.StatusBadRequest, ReasonBadCollapseID, ReasonBadDeviceToken, ReasonBadExpirationDate,
		ReasonBadMessageID, ReasonBadPriority, ReasonBadTopic, ReasonDeviceTokenNotForTopic,
		ReasonDuplicateHeaders, ReasonInvalidPushType, ReasonMissingDeviceToken, ReasonMissingTopic,
		ReasonPayloadEmpty, ReasonTopicDisallowed)
	add(http.StatusForbidden, ReasonBadCertificate, ReasonBadCertificateEnvironment,
		ReasonExpiredProviderToken, ReasonInvalidProviderToken, ReasonMissingProviderToken,
		ReasonUnrelatedKeyIDInToken, ReasonBadEnvironmentKeyIDInToken)
	add(http.StatusNotFound, ReasonBadPath)
	add(http.StatusMethodNotAllowed, ReasonMethodNotAllowed)
	add(http.StatusGone, ReasonUnregistered)
	add(http.StatusRequestEntityTooLarge, ReasonPayloadTooLarge)
	add(http.StatusTooManyRequests, ReasonTooManyProviderTokenUpdates, ReasonTooManyRequests)
	add(http.StatusInternalServerError, ReasonInternalServerError)
	add(http.StatusServiceUnavailable, ReasonServiceUnavailable)
	return m
}()

func reject(reason string) *rejection { return rejections[reason] }

// pushRequest is what the checks learn about one request.
type pushRequest struct {
	token    string
	hdr      NotificationHeaders
	apnsID   string // valid apns-id sent, if any
	pushType string // effective: sent or inferred from the topic
	topic    string // effective: sent or the certificate's only topic
	bundle   string
	dev      *device
	payload  []byte
}

// servePush answers POST /3/device/<token> as APNs does.
func (s *Simulator) servePush(w http.ResponseWriter, r *http.Request, env string, cs *connState) {
	if cs == nil {
		cs = &connState{env: env} // only when the handler is driven directly
	}
	s.stats.requests.Add(1)
	h := w.Header()
	uniqueID := ""
	if env == EnvDevelopment { // only the development environment answers apns-unique-id
		uniqueID = newUUID()
		h["Apns-Unique-Id"] = []string{uniqueID}
	}
	s.maybeGoAway(h, cs)
	var p pushRequest
	rej := s.evaluate(r, env, cs, &p)
	if p.apnsID == "" {
		p.apnsID = newUUID()
	}
	h["Apns-Id"] = []string{p.apnsID}
	if !s.waitLatency(r.Context()) {
		return
	}
	if rej == nil {
		var reset bool
		if rej, reset = s.injectFault(cs); reset {
			return
		}
	}
	if rej != nil {
		s.writeRejection(r.Context(), w, rej, &p)
		return
	}
	s.deliver(&p, env, uniqueID)
	s.stats.record(http.StatusOK, "")
	w.WriteHeader(http.StatusOK)
}

// evaluate runs Apple's checks in order: request line, headers,
// authentication, topic, device token, payload.
func (s *Simulator) evaluate(r *http.Request, env string, cs *connState, p *pushRequest) *rejection {
	if r.Method != http.MethodPost {
		return reject(ReasonMethodNotAllowed)
	}
	if rej := p.readPath(r.URL.Path); rej != nil {
		return rej
	}
	if rej := p.readHeaders(r.Header); rej != nil {
		return rej
	}
	auth, rej := s.authenticate(r.Header, env, cs)
	if rej != nil {
		return rej
	}
	if rej := s.resolveTopic(p, auth); rej != nil {
		return rej
	}
	if rej := s.checkDevice(p, env); rej != nil {
		return rej
	}
	return p.readPayload(r)
}

func (p *pushRequest) readPath(path string) *rejection {
	if path == "/3/device" || path == devicePath {
		return reject(ReasonMissingDeviceToken)
	}
	tok, ok := strings.CutPrefix(path, devicePath)
	if !ok || strings.Contains(tok, "/") {
		return reject(ReasonBadPath)
	}
	p.token = tok
	return nil
}

// apnsHeaders may each appear once.
var apnsHeaders = []string{"Authorization", "Apns-Id", "Apns-Push-Type", "Apns-Expiration",
	"Apns-Priority", "Apns-Topic", "Apns-Collapse-Id"}

func (p *pushRequest) readHeaders(h http.Header) *rejection {
	for _, k := range apnsHeaders {
		if len(h[k]) > 1 {
			return reject(ReasonDuplicateHeaders)
		}
	}
	p.hdr = NotificationHeaders{PushType: first(h, "Apns-Push-Type"), Topic: first(h, "Apns-Topic"),
		Expiration: first(h, "Apns-Expiration"), Priority: first(h, "Apns-Priority"),
		ID: first(h, "Apns-Id"), CollapseID: first(h, "Apns-Collapse-Id")}
	if _, ok := h["Apns-Id"]; ok {
		if !isCanonicalUUID(p.hdr.ID) {
			return reject(ReasonBadMessageID)
		}
		p.apnsID = p.hdr.ID
	}
	if _, ok := h["Apns-Push-Type"]; ok && !knownPushType(p.hdr.PushType) {
		return reject(ReasonInvalidPushType)
	}
	if _, ok := h["Apns-Expiration"]; ok && !isUnixSeconds(p.hdr.Expiration) {
		return reject(ReasonBadExpirationDate)
	}
	if _, ok := h["Apns-Priority"]; ok && !validPriority(p.hdr.Priority, p.hdr.PushType) {
		return reject(ReasonBadPriority)
	}
	if len(p.hdr.CollapseID) > MaxCollapseID {
		return reject(ReasonBadCollapseID)
	}
	return nil
}

func first(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isCanonicalUUID accepts Apple's canonical form: 8-4-4-4-12 lowercase hex.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func isUnixSeconds(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// validPriority: 10, 5 or 1; a background push must not use 10.
func validPriority(prio, pushType string) bool {
	switch prio {
	case "10":
		return pushType != "background"
	case "5", "1":
		return true
	}
	return false
}

// pushTypeSuffix is the topic suffix each push type requires after the
// bundle ID; alert and background use the bare bundle ID, mdm a UID.
var pushTypeSuffix = map[string]string{
	"alert": "", "background": "", "mdm": "",
	"voip":         ".voip",
	"complication": ".complication",
	"fileprovider": ".pushkit.fileprovider",
	"location":     ".location-query",
	"liveactivity": ".push-type.liveactivity",
	"pushtotalk":   ".voip-ptt",
	"widgets":      ".push-type.widgets",
	"controls":     ".push-type.controls",
}

// suffixOrder tries longer suffixes first (".voip-ptt" before ".voip").
var suffixOrder = []string{"liveactivity", "fileprovider", "location", "widgets", "controls",
	"complication", "pushtotalk", "voip"}

func knownPushType(t string) bool {
	_, ok := pushTypeSuffix[t]
	return ok
}

// inferPushType reads the push type off the topic when apns-push-type is
// absent, as APNs did before the header existed.
func inferPushType(topic string) string {
	for _, t := range suffixOrder {
		if sfx := pushTypeSuffix[t]; strings.HasSuffix(topic, sfx) && len(topic) > len(sfx) {
			return t
		}
	}
	return "alert"
}

// topicBundle strips the push type's suffix; ok is false when the topic
// does not fit the push type (a voip push to the bare bundle, an alert to
// "<bundle>.voip").
func topicBundle(pushType, topic string) (string, bool) {
	switch pushType {
	case "mdm":
		return topic, true
	case "alert", "background":
		return topic, inferPushType(topic) == "alert"
	}
	sfx := pushTypeSuffix[pushType]
	b, ok := strings.CutSuffix(topic, sfx)
	return b, ok && b != ""
}

func validTopic(t string) bool {
	if len(t) > maxTopicLen {
		return false
	}
	return validateBundleID(t) == nil
}

// resolveTopic settles topic and push type, then whether this
// certificate or key may push to it.
func (s *Simulator) resolveTopic(p *pushRequest, a authResult) *rejection {
	topic := p.hdr.Topic
	if topic == "" {
		// Token auth must name the topic; a certificate with a single topic
		// implies it.
		if !a.cert || len(a.info.Topics) != 1 {
			return reject(ReasonMissingTopic)
		}
		topic = a.info.Topics[0]
	}
	if !validTopic(topic) {
		return reject(ReasonBadTopic)
	}
	pushType := p.hdr.PushType
	if pushType == "" {
		pushType = inferPushType(topic)
	}
	bundle, ok := topicBundle(pushType, topic)
	if !ok {
		return reject(ReasonInvalidPushType)
	}
	if a.cert && !slices.Contains(a.info.Topics, topic) {
		return reject(ReasonTopicDisallowed)
	}
	if owner := s.keys.owner(bundle); !a.cert && owner != "" && owner != a.teamID {
		return reject(ReasonTopicDisallowed)
	}
	p.topic, p.pushType, p.bundle = topic, pushType, bundle
	return nil
}

// checkDevice looks the token up. A token from the other environment is
// BadDeviceToken, as on Apple's hosts: each only knows its own tokens.
func (s *Simulator) checkDevice(p *pushRequest, env string) *rejection {
	if !isHexToken(p.token) {
		return reject(ReasonBadDeviceToken)
	}
	d := s.devices.get(normalizeToken(p.token))
	if d == nil || d.env != env {
		return reject(ReasonBadDeviceToken)
	}
	if d.bundle != p.bundle || d.kind != deviceKindFor(p.pushType) {
		return reject(ReasonDeviceTokenNotForTopic)
	}
	if at := d.uninstalledAt(); !at.IsZero() {
		return &rejection{status: http.StatusGone, reason: ReasonUnregistered, timestamp: at.UnixMilli()}
	}
	p.dev = d
	return nil
}

// deviceKindFor is the registration a push type reaches: PushKit for voip,
// the app's remote-notification token for alert and background.
func deviceKindFor(pushType string) string {
	switch pushType {
	case "voip":
		return KindVoIP
	case "alert", "background":
		return KindAlert
	}
	return "" // no simulated device registers for the other push types
}

func isHexToken(t string) bool {
	if t == "" || len(t)%2 != 0 || len(t) > maxTokenHex {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (p *pushRequest) readPayload(r *http.Request) *rejection {
	limit := int64(MaxPayload)
	if p.pushType == "voip" {
		limit = MaxVoIPPayload
	}
	if r.ContentLength > limit {
		return reject(ReasonPayloadTooLarge)
	}
	body, err := readBody(r.Body, limit, r.ContentLength)
	if err != nil {
		// The client reset the stream; nobody is left to answer.
		panic(http.ErrAbortHandler)
	}
	switch {
	case len(body) == 0:
		return reject(ReasonPayloadEmpty)
	case int64(len(body)) > limit:
		return reject(ReasonPayloadTooLarge)
	}
	p.payload = body
	return nil
}

// readBody reads at most limit+1 bytes, sized by Content-Length when known
// so a typical push costs one allocation.
func readBody(body io.Reader, limit, hint int64) ([]byte, error) {
	size := int64(512)
	if hint >= 0 && hint <= limit {
		size = hint + 1
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit || err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// deliver appends the notification to the device's inbox; the flusher
// persists it later.
func (s *Simulator) deliver(p *pushRequest, env, uniqueID string) {
	p.hdr.ID = p.apnsID
	n := Notification{Headers: p.hdr, Payload: p.payload, ReceivedAt: s.now().UTC(),
		Environment: env, UniqueID: uniqueID}
	if !json.Valid(p.payload) {
		quoted, _ := json.Marshal(string(p.payload)) // marshaling a string cannot fail
		n.Payload, n.PayloadInvalid = quoted, true
	}
	p.dev.deliver(n, s.cfg.InboxLimit)
	s.stats.accepted.Add(1)
	s.dirty.Store(true)
}

func (s *Simulator) writeRejection(ctx context.Context, w http.ResponseWriter, rej *rejection, p *pushRequest) {
	s.stats.record(rej.status, rej.reason)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("apnssim: rejected", "status", rej.status, "reason", rej.reason,
			"token", maskToken(p.token), "topic", p.hdr.Topic, "apns_id", p.apnsID)
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(rej.status)
	body := make([]byte, 0, 64)
	body = append(body, `{"reason":"`...)
	body = append(body, rej.reason...) // reasons are plain ASCII constants
	body = append(body, '"')
	if rej.timestamp != 0 {
		body = append(body, `,"timestamp":`...)
		body = strconv.AppendInt(body, rej.timestamp, 10)
	}
	body = append(body, '}')
	_, _ = w.Write(body) // a write error means the client went away
}
