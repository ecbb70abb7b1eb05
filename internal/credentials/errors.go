package credentials

// Stable error codes. The HTTP API returns them to clients, which switch on
// them, so they never change once released.
const (
	CodeFileTooLarge           = "file_too_large"
	CodeP12PasswordRequired    = "p12_password_required"
	CodeP12BadPassword         = "p12_bad_password"
	CodeP12Malformed           = "p12_malformed"
	CodeNotPushCertificate     = "not_push_certificate"
	CodeCertificateExpired     = "certificate_expired"
	CodeCertificateNotYetValid = "certificate_not_yet_valid"
	CodeEnvironmentMismatch    = "environment_mismatch"
	CodeBadEnvironment         = "bad_environment"
	CodeP8Malformed            = "p8_malformed"
	CodeP8NotP256              = "p8_not_p256"
	CodeBadKeyID               = "bad_key_id"
	CodeBadTeamID              = "bad_team_id"
	CodeBadBundleID            = "bad_bundle_id"
)

// Error is a rejection of an uploaded credential. Code is stable and
// machine-readable; Message tells the user what to fix and never contains
// secret material (passwords, key bytes).
type Error struct {
	Code    string
	Message string

	// cause is the underlying library error, kept for logs and errors.Is.
	// It must not carry secrets; the libraries we wrap never echo passwords
	// or key bytes in their errors.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Message + " (" + e.cause.Error() + ")"
	}
	return e.Code + ": " + e.Message
}

// Unwrap exposes the underlying cause, e.g. ErrNotPushCertificate.
func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, &Error{Code: CodeP12BadPassword}) match on the
// code alone, so callers need not compare messages.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

func newError(code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, cause: cause}
}
