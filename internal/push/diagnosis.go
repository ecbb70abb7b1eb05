package push

import (
	"fmt"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

// Diagnoses are written for the app developer reading a trace: what Apple
// said, what it most likely means for their app, and what to change.

// isEnvMismatch tells whether a reason may mean that the token or the key
// belongs to the other environment, which another certificate can fix.
func isEnvMismatch(reason string) bool {
	switch reason {
	case "BadDeviceToken", "BadCertificateEnvironment", "BadEnvironmentKeyIdInToken", "BadEnvironmentKeyInToken":
		return true
	}
	return false
}

func otherEnv(env string) string {
	if env == store.EnvProduction {
		return store.EnvDevelopment
	}
	return store.EnvProduction
}

// hostLabel names an environment's APNs host as a developer knows it.
func hostLabel(env string) string {
	if env == store.EnvDevelopment {
		return "development (sandbox) APNs host (" + hostOf(env) + ")"
	}
	return "production APNs host (" + hostOf(env) + ")"
}

// buildsOf says which builds get tokens of an environment.
func buildsOf(env string) string {
	if env == store.EnvDevelopment {
		return "Debug builds"
	}
	return "TestFlight and App Store builds"
}

func voipNote(pushType string) string {
	if pushType == apns.PushTypeVoIP {
		return " that can send VoIP pushes (a VoIP Services certificate or a p8 key)"
	}
	return ""
}

// diagnoseEnvMismatch explains the seed's FAQ 1 ("bad devicetoken") and its
// certificate and key variants, naming the certificate to use instead.
func diagnoseEnvMismatch(reason, pushType string, cert, other *store.Certificate) string {
	env, oenv := cert.Environment, otherEnv(cert.Environment)
	var b strings.Builder
	switch reason {
	case "BadDeviceToken":
		fmt.Fprintf(&b, "bad devicetoken: the %s rejected this token sent with certificate ID %d (%s). ", hostLabel(env), cert.ID, env)
		fmt.Fprintf(&b, "Tokens from Debug builds are development tokens; TestFlight and App Store builds get production tokens, "+
			"so the certificate ID the app registers its token with must match how it was built. ")
		if other != nil {
			fmt.Fprintf(&b, "Register tokens from %s with certificate ID %d (%s).", buildsOf(oenv), other.ID, oenv)
		}
	case "BadCertificateEnvironment":
		fmt.Fprintf(&b, "bad certificate environment: the %s refused certificate ID %d, uploaded as %s: Apple says it is a %s certificate. "+
			"Upload it again for the %s environment. ", hostLabel(env), cert.ID, env, oenv, oenv)
		if other != nil {
			fmt.Fprintf(&b, "Certificate ID %d (%s) has the same bundle ID.", other.ID, oenv)
		}
	default: // BadEnvironmentKey(Id)InToken
		fmt.Fprintf(&b, "the p8 key of certificate ID %d (key ID %s) is scoped to the %s environment, but it was used on the %s. "+
			"Create a key for both environments at Apple, or upload this key again as %s. ", cert.ID, cert.KeyID, oenv, hostLabel(env), oenv)
		if other != nil {
			fmt.Fprintf(&b, "Certificate ID %d (%s) has the same bundle ID.", other.ID, oenv)
		}
	}
	if other == nil {
		fmt.Fprintf(&b, "No %s certificate%s for %s is uploaded: upload one for the %s environment and register tokens from %s with its certificate ID.",
			oenv, voipNote(pushType), cert.BundleID, oenv, buildsOf(oenv))
	} else {
		fmt.Fprintf(&b, " ringd retries once through certificate ID %d.", other.ID)
	}
	b.WriteString(" The token is kept: ringd never deletes a token for this reason.")
	return b.String()
}

// diagnoseConfiguration explains a configuration answer other than an
// environment mismatch that another certificate could fix.
func diagnoseConfiguration(reason, pushType string, cert *store.Certificate, registeredCert int64, switched bool) string {
	topic := topicOf(cert.BundleID, pushType)
	switch {
	case switched && reason == "BadDeviceToken":
		return fmt.Sprintf("bad devicetoken: the %s also rejected this token, through certificate ID %d: it is not a token of %s in either environment. "+
			"It may belong to another app or be garbled: register the hex of the deviceToken from didRegisterForRemoteNotificationsWithDeviceToken "+
			"(PKPushCredentials.token for VoIP). The registration still uses certificate ID %d and the token is kept.",
			hostLabel(cert.Environment), cert.ID, topic, registeredCert)
	case reason == "DeviceTokenNotForTopic" && pushType == apns.PushTypeVoIP:
		return fmt.Sprintf("this token is not a PushKit token for %s: register VoIP tokens (PKPushCredentials.token from pushRegistry(_:didUpdate:for:)) "+
			"with \"voip\": true, and alert tokens from didRegisterForRemoteNotificationsWithDeviceToken without it. The token is kept.", topic)
	case reason == "DeviceTokenNotForTopic":
		return fmt.Sprintf("this token is not an alert token for %s: it may be a PushKit (VoIP) token registered without \"voip\": true, "+
			"or another app's token. Register the token from didRegisterForRemoteNotificationsWithDeviceToken for alerts. The token is kept.", topic)
	case reason == "TopicDisallowed" && pushType == apns.PushTypeVoIP:
		return fmt.Sprintf("certificate ID %d may not push to %s: VoIP pushes need a VoIP Services certificate or a p8 key for %s; upload one "+
			"and register the VoIP tokens with its certificate ID.", cert.ID, topic, cert.BundleID)
	}
	return fmt.Sprintf("APNs refused the push through certificate ID %d (%s, %s) to %s: %s. %s The token is kept.",
		cert.ID, cert.Environment, cert.BundleID, topic, reasonText(0, reason), configAdvice(reason, cert))
}

func configAdvice(reason string, cert *store.Certificate) string {
	switch reason {
	case "TopicDisallowed", "BadTopic", "MissingTopic":
		return "Check that the certificate's bundle ID is the app's bundle ID."
	case "InvalidProviderToken", "MissingProviderToken":
		return fmt.Sprintf("Check the key ID (%s) and team ID (%s) of the p8 key, and that the key was not revoked.", cert.KeyID, cert.TeamID)
	case "UnrelatedKeyIdInToken":
		return "The key belongs to another team or topic than the connection: upload a key of the app's team."
	case "BadCertificate", "Forbidden":
		return "The certificate may be revoked or expired: create a new one at Apple, upload it and register tokens with the new certificate ID."
	}
	return "Check the certificate's environment and bundle ID."
}

// reasonText is "<status> <Reason> (<meaning>)" as far as known.
func reasonText(status int, reason string) string {
	s := reason
	if status != 0 {
		s = fmt.Sprintf("%d %s", status, reason)
	}
	if _, meaning, ok := apns.ReasonInfo(reason); ok {
		s += " (" + meaning + ")"
	}
	return s
}

func diagnoseRejected(r *sendResult) string {
	if r.resp == nil {
		return fmt.Sprintf("ringd did not send this request because APNs would refuse it: %v. It is not retried.", r.err)
	}
	return fmt.Sprintf("APNs refused the request: %s. It is not retried: the request has to change.", reasonText(r.resp.Status, r.resp.Reason))
}

func diagnoseTokenDead(reason string, at time.Time, removed bool) string {
	ts := at.UTC().Format(time.RFC3339)
	if removed {
		return fmt.Sprintf("APNs says the app was uninstalled or the token expired at %s (410 %s); the registration is removed", ts, reason)
	}
	return fmt.Sprintf("APNs says the token stopped being valid at %s (410 %s), but it was registered after that (or is already gone): "+
		"the registration is kept", ts, reason)
}

func diagnoseTransient(r *sendResult, plan retryPlan, attempts, maxAttempts int) string {
	var what string
	if r.resp != nil {
		what = "APNs answered " + reasonText(r.resp.Status, r.resp.Reason)
	} else {
		what = fmt.Sprintf("no answer from APNs (%v)", r.err)
	}
	switch {
	case plan.state == stateExpired:
		return what + "; the push expires before another attempt could be made, so ringd stops"
	case plan.state == stateFailed:
		return fmt.Sprintf("%s; ringd gave up after %d attempts", what, attempts)
	}
	of := fmt.Sprintf("attempt %d of %d", attempts+1, maxAttempts)
	if attempts >= maxAttempts {
		// Only answered failures spend MaxAttempts: an outage is waited out.
		of = fmt.Sprintf("attempt %d; failures without an answer from APNs do not count against the %d allowed", attempts+1, maxAttempts)
	}
	if plan.wait == 0 {
		return fmt.Sprintf("%s; retrying at once (%s)", what, of)
	}
	return fmt.Sprintf("%s; retrying in %s (%s)", what, plan.wait.Round(time.Millisecond), of)
}

// diagnoseStopped explains a transient failure that is not retried
// because Expire stopped the push while the request was in flight.
func diagnoseStopped(r *sendResult, reason string) string {
	what := fmt.Sprintf("no answer from APNs (%v)", r.err)
	if r.resp != nil {
		what = "APNs answered " + reasonText(r.resp.Status, r.resp.Reason)
	}
	return fmt.Sprintf("%s; the push was stopped (%s) meanwhile, so ringd does not retry", what, reason)
}

func diagnoseCredential(certID int64, err error) string {
	return fmt.Sprintf("certificate ID %d cannot be used: %v. Upload the certificate again, or register the token with a current certificate ID; "+
		"pushes through it fail until then.", certID, err)
}

func diagnoseCertificateExpired(cert *store.Certificate) string {
	return fmt.Sprintf("certificate ID %d (%s, %s) expired at %s, so ringd did not send the push: APNs refuses expired certificates "+
		"(403 BadCertificate). Create a new push certificate at Apple, upload it, and register the tokens with its certificate ID; "+
		"the token is kept. Other certificates of the app are not affected.",
		cert.ID, cert.Environment, cert.BundleID, cert.ExpiresAt.UTC().Format(time.RFC3339))
}

func diagnoseExpiredUnsent(expiresAt time.Time) string {
	return fmt.Sprintf("the push expired at %s before it could be sent: a call push is useless once ringing has stopped, so it is dropped",
		expiresAt.UTC().Format(time.RFC3339))
}

// diagnoseNoAttempt explains a final delivery that has no attempt.
func diagnoseNoAttempt(d *store.Delivery, expiresAt time.Time) string {
	switch d.Reason {
	case ReasonNoAlertRegistration:
		return "this device registered only a VoIP (PushKit) token and this is not a VoIP push: alert pushes need the token from " +
			"didRegisterForRemoteNotificationsWithDeviceToken, not the PushKit one. Register that token too (without \"voip\": true), " +
			"or send with \"voip\": true."
	case ReasonPayloadTooLarge:
		return fmt.Sprintf("this device has no VoIP token, so it would get an alert, but the alert payload is over %d bytes (VoIP allows %d): "+
			"shorten the request or register the device's VoIP token.", apns.MaxPayload, apns.MaxVoIPPayload)
	case ReasonExpired:
		return diagnoseExpiredUnsent(expiresAt)
	}
	return ""
}

// diagnoseStoppedPush explains a delivery that Expire stopped.
func diagnoseStoppedPush(reason string) string {
	return fmt.Sprintf("the push was stopped (%s), e.g. because the call it rang for was answered, declined or cancelled: "+
		"ringd sends nothing more to this device", reason)
}

func diagnoseNoDevices(userID string) string {
	return fmt.Sprintf("user %q has no registered device token, so nothing was sent: after every login the app must register its APNs token "+
		"with its certificate ID (PUT /v1/me/apns), as TUIKit's setAPNS does", userID)
}

func diagnoseAllExcluded(userID string, excluded int) string {
	return fmt.Sprintf("no push was needed: the request excluded %d device(s) of user %q (exclude_devices, e.g. devices the call "+
		"reached over their live connection) and the user has no other registered device", excluded, userID)
}
