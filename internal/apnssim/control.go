package apnssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxControlBody bounds control API request bodies.
const maxControlBody = 64 << 10

// Control API error codes. Clients switch on these, never on the message.
const (
	CodeBadRequest     = "bad_request"
	CodeBodyTooLarge   = "body_too_large"
	CodeDeviceNotFound = "device_not_found"
	CodeKeyNotFound    = "key_not_found"
	CodeCertNotFound   = "certificate_not_found"
	CodeNotFound       = "not_found"
	CodeInternal       = "internal_error"
)

// apiError is a control API error answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// control serves /sim/v1/: the developer portal and the phone.
type control struct{ sim *Simulator }

// ControlHandler serves the /sim/v1/ control API (JSON in and out).
func (s *Simulator) ControlHandler() http.Handler {
	c := &control{sim: s}
	mux := http.NewServeMux()
	mux.Handle("POST /sim/v1/keys", c.handle(c.postKey))
	mux.Handle("POST /sim/v1/keys/{key_id}/revoke", c.handle(c.revokeKey))
	mux.Handle("POST /sim/v1/certificates", c.handle(c.postCertificate))
	mux.Handle("POST /sim/v1/certificates/{certificate_id}/revoke", c.handle(c.revokeCertificate))
	mux.Handle("POST /sim/v1/restart", c.handle(c.postRestart))
	mux.Handle("POST /sim/v1/devices", c.handle(c.postDevice))
	mux.Handle("GET /sim/v1/devices", c.handle(c.listDevices))
	mux.Handle("DELETE /sim/v1/devices/{token}", c.handle(c.deleteDevice))
	mux.Handle("GET /sim/v1/devices/{token}/inbox", c.handle(c.getInbox))
	mux.Handle("GET /sim/v1/faults", c.handle(c.getFaults))
	mux.Handle("POST /sim/v1/faults", c.handle(c.postFaults))
	mux.Handle("DELETE /sim/v1/faults", c.handle(c.deleteFaults))
	mux.Handle("GET /sim/v1/stats", c.handle(c.getStats))
	mux.Handle("GET /sim/v1/endpoints", c.handle(c.getEndpoints))
	mux.Handle("/sim/v1/", c.handle(func(http.ResponseWriter, *http.Request) error {
		return &apiError{http.StatusNotFound, CodeNotFound, "no such control endpoint"}
	}))
	return mux
}

// handle maps a handler's error to one JSON answer.
func (c *control) handle(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := f(w, r)
		if err == nil {
			return
		}
		ae := c.classify(err)
		if ae.status == http.StatusInternalServerError {
			c.sim.log.Error("apnssim: control", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeJSON(w, ae.status, map[string]string{"code": ae.code, "error": ae.msg})
	})
}

func (c *control) classify(err error) *apiError {
	var ae *apiError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			fmt.Sprintf("body over %d bytes", tooLarge.Limit)}
	case errors.Is(err, ErrInvalid):
		return &apiError{http.StatusBadRequest, CodeBadRequest, err.Error()}
	case errors.Is(err, ErrUnknownDevice):
		return &apiError{http.StatusNotFound, CodeDeviceNotFound, "no device with that token"}
	case errors.Is(err, ErrUnknownKey):
		return &apiError{http.StatusNotFound, CodeKeyNotFound, "no key with that key ID"}
	case errors.Is(err, ErrUnknownCertificate):
		return &apiError{http.StatusNotFound, CodeCertNotFound, "no certificate with that certificate ID"}
	default:
		return &apiError{http.StatusInternalServerError, CodeInternal, "internal error"}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a write error means the client went away
}

// readControlBody reads a size-limited request body.
func readControlBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields. An
// empty body means {} so optional-only requests may omit it.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return nil
}

// The parse functions are the control API's decoders, kept free of I/O so
// FuzzControlRequests can drive them.

func parseKeyRequest(b []byte) (KeyOptions, error) {
	var o KeyOptions
	if err := decodeStrict(b, &o); err != nil {
		return o, err
	}
	return o.normalize()
}

func parseCertRequest(b []byte) (CertOptions, error) {
	var o CertOptions
	if err := decodeStrict(b, &o); err != nil {
		return o, err
	}
	return o.normalize()
}

func parseDeviceRequest(b []byte) (DeviceOptions, error) {
	var o DeviceOptions
	if err := decodeStrict(b, &o); err != nil {
		return o, err
	}
	return o.normalize()
}

// RestartOptions is the body of POST /sim/v1/restart.
type RestartOptions struct {
	// DownMS is how long the endpoints refuse connections (at most 60000).
	DownMS int `json:"down_ms,omitempty"`
}

func parseRestartRequest(b []byte) (RestartOptions, error) {
	var o RestartOptions
	if err := decodeStrict(b, &o); err != nil {
		return o, err
	}
	if o.DownMS < 0 || time.Duration(o.DownMS)*time.Millisecond > maxRestartDown {
		return o, fmt.Errorf("%w: down_ms must be between 0 and %d", ErrInvalid, maxRestartDown.Milliseconds())
	}
	return o, nil
}

func parseFaultsRequest(b []byte) (Faults, error) {
	var f Faults
	if err := decodeStrict(b, &f); err != nil {
		return f, err
	}
	return f, f.Validate()
}

// decodeRequest reads the body and runs one of the parse functions.
func decodeRequest[T any](w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (T, error) {
	b, err := readControlBody(w, r)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(b)
}

func (c *control) postKey(w http.ResponseWriter, r *http.Request) error {
	opts, err := decodeRequest(w, r, parseKeyRequest)
	if err != nil {
		return err
	}
	k, err := c.sim.IssueKeyWith(opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (c *control) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("key_id")
	if err := c.sim.RevokeKey(id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_id": id, "revoked": true})
	return nil
}

func (c *control) revokeCertificate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("certificate_id")
	if err := c.sim.RevokeCertificate(id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificate_id": id, "revoked": true})
	return nil
}

// postRestart restarts the endpoints and answers once they accept again.
func (c *control) postRestart(w http.ResponseWriter, r *http.Request) error {
	o, err := decodeRequest(w, r, parseRestartRequest)
	if err != nil {
		return err
	}
	if err := c.sim.Restart(r.Context(), time.Duration(o.DownMS)*time.Millisecond); err != nil {
		return err
	}
	return c.getEndpoints(w, r)
}

func (c *control) postCertificate(w http.ResponseWriter, r *http.Request) error {
	opts, err := decodeRequest(w, r, parseCertRequest)
	if err != nil {
		return err
	}
	ci, err := c.sim.IssueCertificateWith(opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ci)
	return nil
}

func (c *control) postDevice(w http.ResponseWriter, r *http.Request) error {
	opts, err := decodeRequest(w, r, parseDeviceRequest)
	if err != nil {
		return err
	}
	tok, err := c.sim.MintDeviceWith(opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	return nil
}

func (c *control) listDevices(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"devices": c.sim.Devices()})
	return nil
}

func (c *control) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	tok := r.PathValue("token")
	if err := c.sim.Uninstall(tok); err != nil {
		return err
	}
	d := c.sim.devices.get(normalizeToken(tok))
	writeJSON(w, http.StatusOK, d.info())
	return nil
}

func (c *control) getInbox(w http.ResponseWriter, r *http.Request) error {
	list, err := c.sim.Inbox(r.PathValue("token"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": list})
	return nil
}

func (c *control) getFaults(w http.ResponseWriter, _ *http.Request) error {
	f, _ := c.sim.CurrentFaults()
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (c *control) postFaults(w http.ResponseWriter, r *http.Request) error {
	f, err := decodeRequest(w, r, parseFaultsRequest)
	if err != nil {
		return err
	}
	if err := c.sim.setFaults(f); err != nil {
		return err
	}
	return c.getFaults(w, r)
}

func (c *control) deleteFaults(w http.ResponseWriter, r *http.Request) error {
	c.sim.ClearFaults()
	return c.getFaults(w, r)
}

func (c *control) getStats(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, c.sim.Stats())
	return nil
}

func (c *control) getEndpoints(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{
		"sandbox_url":    c.sim.SandboxURL(),
		"production_url": c.sim.ProductionURL(),
		"ca_pem":         string(c.sim.CACertPEM()),
	})
	return nil
}
