package httpapi

// AppSecretAAD is the additional data an app's secret key (current or
// previous) is sealed with, for tools that re-seal it under a new master
// key (ringd rotate-master-key).
func AppSecretAAD(sdkAppID int64) []byte { return secretAAD(sdkAppID) }
