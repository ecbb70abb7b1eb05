// Package apnssim is a stand-in for Apple's push service (APNs). It serves
// the provider API (POST /3/device/<token>) over HTTP/2 and TLS on a sandbox
// and a production endpoint, checks requests the way Apple documents and
// answers with Apple's statuses and reasons. It also plays Apple's developer
// portal (p8 keys, p12 certificates) and the phone (device tokens, an inbox
// per device, uninstalls), and injects faults. The /sim/v1/ control API
// (ControlHandler) exposes the same helpers over HTTP.
//
// ringd's demo (`ringd serve --dev`), its tests and its benchmarks run on it,
// so the hot path takes no global lock and never touches the disk.
//
// # Order of the checks
//
// 405 MethodNotAllowed; 404 BadPath / 400 MissingDeviceToken; 400
// DuplicateHeaders, BadMessageId, InvalidPushType, BadExpirationDate,
// BadPriority, BadCollapseId; 403 authentication (certificate: BadCertificate,
// BadCertificateEnvironment; token: MissingProviderToken,
// InvalidProviderToken, ExpiredProviderToken, BadEnvironmentKeyIdInToken,
// UnrelatedKeyIdInToken, 429 TooManyProviderTokenUpdates); 400 MissingTopic,
// BadTopic, InvalidPushType (push type does not fit the topic),
// TopicDisallowed; 400 BadDeviceToken, DeviceTokenNotForTopic, 410
// Unregistered; 400 PayloadEmpty, 413 PayloadTooLarge; then faults; then 200.
//
// # Choices where Apple's documentation is silent
//
//   - apns-id must be lowercase canonical (Apple's documented form); an
//     uppercase UUID is BadMessageId.
//   - A push type that does not fit the topic suffix (voip to the bare
//     bundle, alert to "<bundle>.voip") is InvalidPushType; a topic that is
//     not a well-formed identifier is BadTopic. A missing apns-push-type is
//     inferred from the topic suffix.
//   - A connection with a client certificate authenticates by it; an
//     authorization header on it is ignored.
//   - Token-auth TopicDisallowed: a bundle belongs to the team recorded for
//     it (team_id when issuing a certificate or minting a device, first
//     claim wins). Bundles nobody claimed accept any team's key.
//   - The first valid JWT binds its key to the connection; another key, even
//     of the same team, is UnrelatedKeyIdInToken. A different JWT less than
//     20 minutes after the previous change (the first token counts) is 429
//     TooManyProviderTokenUpdates and leaves the bound token usable. An iat
//     more than an hour ahead is InvalidProviderToken.
//   - A token from the other environment is BadDeviceToken (each Apple host
//     knows only its own tokens). Token hex is case-insensitive.
//   - apns-unique-id is sent on every answer of the sandbox endpoint, never
//     on production.
//   - A body that is not JSON is accepted (APNs has no reason for it) and
//     kept in the inbox as a JSON string with payload_invalid set.
//   - Latency faults delay every answer; error and reset faults replace
//     only answers that would have been 200, so Apple's own checks still win.
//   - The TLS layer requests a client certificate and checks it was signed
//     by the simulator's CA, but not its dates, so an expired certificate
//     reaches the handler and gets 403 BadCertificate as from Apple.
//   - A production-only certificate is named "Apple Production IOS Push
//     Services: <bundle>" (only OID .3.2); "Apple Push Services" names the
//     universal one (.3.1 and .3.2). A VoIP certificate follows the
//     environment asked for, both by default.
//   - Not simulated: the single stream before the first valid token, the
//     stream limit dropping after a rejection, IdleTimeout, per-device
//     TooManyRequests (available as a fault).
package apnssim
