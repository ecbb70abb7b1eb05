package apns

import (
	"maps"
	"slices"
)

// reasonEntry is one row of the reason table: the status APNs sends the
// reason with, ringd's class, and what it means in plain words (shown to
// operators by the console and the diagnosis).
type reasonEntry struct {
	status  int
	class   Class
	meaning string
}

// reasons is THE table (ARCHITECTURE.md: "Apple's answer decides a token's
// fate, through one table"). Every reason of shared/reference/apns.md is
// here; Classify and ReasonInfo both read it, nothing else may.
var reasons = map[string]reasonEntry{
	// 400
	"BadCollapseId":          {400, ClassBadRequest, "the apns-collapse-id header is longer than 64 bytes"},
	"BadDeviceToken":         {400, ClassConfiguration, "the device token is not valid for this host: most often a sandbox (Xcode) token sent to production or the reverse; check the environment before deleting it"},
	"BadExpirationDate":      {400, ClassBadRequest, "the apns-expiration header is not a valid UNIX time in seconds"},
	"BadMessageId":           {400, ClassBadRequest, "the apns-id header is not a canonical lowercase UUID"},
	"BadPriority":            {400, ClassBadRequest, "the apns-priority header is not 10, 5 or 1, or is 10 on a background push"},
	"BadTopic":               {400, ClassConfiguration, "the apns-topic header is not valid"},
	"DeviceTokenNotForTopic": {400, ClassConfiguration, "the device token belongs to another topic: an alert token sent with the .voip topic, a VoIP token with the bundle topic, or another app's token"},
	"DuplicateHeaders":       {400, ClassBadRequest, "a header was repeated"},
	"IdleTimeout":            {400, ClassTransient, "the connection was idle too long; open a new one and retry"},
	"InvalidPushType":        {400, ClassBadRequest, "the apns-push-type header is not a valid push type"},
	"MissingDeviceToken":     {400, ClassBadRequest, "the request path has no device token"},
	"MissingTopic":           {400, ClassConfiguration, "apns-topic is required: token authentication, or a certificate with several topics"},
	"PayloadEmpty":           {400, ClassBadRequest, "the request body is empty"},
	"TopicDisallowed":        {400, ClassConfiguration, "the key or certificate does not allow pushing to this topic"},
	// 403
	"BadCertificate":             {403, ClassConfiguration, "the client certificate is not valid"},
	"BadCertificateEnvironment":  {403, ClassConfiguration, "the certificate is for the other environment (a development certificate on the production host, or the reverse)"},
	"ExpiredProviderToken":       {403, ClassTransient, "the provider token (JWT) is more than one hour old; a fresh one is signed and the push retried"},
	"Forbidden":                  {403, ClassConfiguration, "the action is not allowed for this credential"},
	"InvalidProviderToken":       {403, ClassConfiguration, "the provider token is not valid: wrong signature, key ID, team ID or algorithm"},
	"MissingProviderToken":       {403, ClassConfiguration, "no client certificate and no authorization header"},
	"UnrelatedKeyIdInToken":      {403, ClassConfiguration, "the key is not related to what this connection is bound to (team or topics); a new connection is needed"},
	"BadEnvironmentKeyIdInToken": {403, ClassConfiguration, "the p8 key is scoped to the other environment (sandbox or production)"},
	"BadEnvironmentKeyInToken":   {403, ClassConfiguration, "the p8 key is scoped to the other environment (sandbox or production)"},
	// 404, 405
	"BadPath":          {404, ClassBadRequest, "the request :path is not /3/device/<token>"},
	"MethodNotAllowed": {405, ClassBadRequest, "the request method is not POST"},
	// 410
	"ExpiredToken": {410, ClassTokenDead, "the device token has expired"},
	"Unregistered": {410, ClassTokenDead, "the device token is no longer active for the topic (app uninstalled or notifications turned off); remove it if it was registered before the timestamp"},
	// 413
	"PayloadTooLarge": {413, ClassBadRequest, "the payload is over 4096 bytes (5120 for VoIP)"},
	// 429
	"TooManyProviderTokenUpdates": {429, ClassTransient, "the provider token changed too often on this connection (more than once in 20 minutes)"},
	"TooManyRequests":             {429, ClassTransient, "too many requests in a row to the same device token; retry after a delay"},
	// 500, 503
	"InternalServerError": {500, ClassTransient, "APNs had an internal error"},
	"ServiceUnavailable":  {503, ClassTransient, "APNs is unavailable"},
	"Shutdown":            {503, ClassTransient, "the APNs server is shutting down; reconnect"},
	// Broadcast channels only; ringd does not use them but may meet them.
	"FeatureNotEnabled": {400, ClassConfiguration, "broadcast push is not enabled for this app"},
	"MissingChannelId":  {400, ClassBadRequest, "the broadcast channel ID is missing"},
	"BadChannelId":      {400, ClassBadRequest, "the broadcast channel ID is not valid"},
}

// Classify reads one APNs answer. A known reason decides; an unknown or
// missing reason falls back on the status, so a reason Apple adds tomorrow
// still lands in a sensible class (403 is always about our credential).
func Classify(status int, reason string) Class {
	if status == 200 {
		return ClassDelivered
	}
	if e, ok := reasons[reason]; ok {
		return e.class
	}
	return classifyStatus(status)
}

func classifyStatus(status int) Class {
	switch {
	case status == 410:
		return ClassTokenDead
	case status == 403:
		return ClassConfiguration
	case status == 429, status >= 500:
		return ClassTransient
	case status >= 400:
		return ClassBadRequest
	default:
		// No HTTP answer we understand (0, 1xx, 3xx): treat it like a
		// transport failure.
		return ClassTransient
	}
}

// ReasonInfo returns the class and a plain-words meaning of an APNs reason.
// ok is false for a reason that is not in the table.
func ReasonInfo(reason string) (class Class, meaning string, ok bool) {
	e, ok := reasons[reason]
	if !ok {
		return "", "", false
	}
	return e.class, e.meaning, true
}

// Reasons lists every reason of the table, sorted, for documentation and
// tests.
func Reasons() []string {
	return slices.Sorted(maps.Keys(reasons))
}
