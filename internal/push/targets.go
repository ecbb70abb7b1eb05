package push

import (
	"cmp"
	"slices"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

// Reasons ringd itself records on a delivery (Apple's reasons are stored
// as Apple spells them).
const (
	ReasonNoAlertRegistration = "NoAlertRegistration"
	ReasonPayloadTooLarge     = "PayloadTooLarge"
	ReasonExpired             = "Expired"
	ReasonCredential          = "CredentialUnavailable"
	ReasonTransport           = "TransportError"
	ReasonMaxAttempts         = "MaxAttempts"
	// ReasonCertificateExpired: the certificate's NotAfter has passed, so
	// ringd does not send what APNs would refuse with BadCertificate.
	ReasonCertificateExpired = "CertificateExpired"
)

// target is the one registration a push goes to on one device, and how.
type target struct {
	reg      store.Registration
	pushType string
	reason   string // non-empty: the delivery is created failed with it
}

// selectTargets picks exactly one registration per device (DeviceKey): the
// VoIP one when the request asks for VoIP and the device has it, else the
// newest alert one. A device with only VoIP registrations and a non-VoIP
// request cannot show an alert: its delivery fails at once with
// NoAlertRegistration rather than being silently skipped, so the trace says
// why the phone stayed quiet. Devices come newest first. Registrations
// whose device ID is in req.ExcludeDevices are skipped (the call service
// leaves out the devices it reaches over their live connection); one
// without a device ID is never excluded.
func selectTargets(regs []store.Registration, req Request) []target {
	sorted := slices.Clone(regs)
	if len(req.ExcludeDevices) > 0 {
		excluded := make(map[string]bool, len(req.ExcludeDevices))
		for _, id := range req.ExcludeDevices {
			if id != "" {
				excluded[id] = true
			}
		}
		sorted = slices.DeleteFunc(sorted, func(r store.Registration) bool { return r.DeviceID != "" && excluded[r.DeviceID] })
	}
	slices.SortStableFunc(sorted, func(a, b store.Registration) int {
		if c := b.RegisteredAt.Compare(a.RegisteredAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Token, b.Token)
	})
	var order []string
	byDevice := map[string][]store.Registration{}
	for _, r := range sorted {
		k := r.DeviceKey()
		if _, seen := byDevice[k]; !seen {
			order = append(order, k)
		}
		byDevice[k] = append(byDevice[k], r)
	}
	targets := make([]target, 0, len(order))
	for _, k := range order {
		targets = append(targets, pickTarget(byDevice[k], req))
	}
	return targets
}

// pickTarget chooses within one device's registrations, newest first.
func pickTarget(regs []store.Registration, req Request) target {
	voip, alert := -1, -1
	for i, r := range regs {
		if r.Kind == store.KindVoIP && voip < 0 {
			voip = i
		}
		if r.Kind != store.KindVoIP && alert < 0 {
			alert = i
		}
	}
	switch {
	case req.VoIP && voip >= 0:
		return target{reg: regs[voip], pushType: apns.PushTypeVoIP}
	case alert >= 0:
		return target{reg: regs[alert], pushType: alertPushType(req)}
	default:
		return target{reg: regs[voip], pushType: apns.PushTypeVoIP, reason: ReasonNoAlertRegistration}
	}
}

func alertPushType(req Request) string {
	if isBackground(req) {
		return apns.PushTypeBackground
	}
	return apns.PushTypeAlert
}

// pushTypeOf tells a stored delivery's push type, which follows from its
// registration kind and the request.
func pushTypeOf(d *store.Delivery, req Request) string {
	if d.Kind == store.KindVoIP {
		return apns.PushTypeVoIP
	}
	return alertPushType(req)
}

// topicOf is the apns-topic for a push type of an app.
func topicOf(bundleID, pushType string) string {
	if pushType == apns.PushTypeVoIP {
		return bundleID + ".voip"
	}
	return bundleID
}

// priorityOf applies the defaults: VoIP always 10 (a delayed PushKit push
// is a missed call), background 5 (Apple refuses 10), alert as asked or 10.
func priorityOf(req Request, pushType string) int {
	switch pushType {
	case apns.PushTypeVoIP:
		return 10
	case apns.PushTypeBackground:
		if req.Priority == 1 {
			return 1
		}
		return 5
	}
	if req.Priority == 0 {
		return 10
	}
	return req.Priority
}
