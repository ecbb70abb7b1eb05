package apns

import "log/slog"

// maskToken shortens a device token for logs to its first and last four
// characters (a1b2…9f0e): enough to match a support report, not enough to
// push to the device.
func maskToken(t string) string {
	if len(t) <= 8 {
		return "…"
	}
	return t[:4] + "…" + t[len(t)-4:]
}

// tokenAttr is the log attribute of a device token, always masked.
func tokenAttr(t string) slog.Attr {
	return slog.String("device_token", maskToken(t))
}
