package push

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// Trace statuses of a push.
const (
	StatusPending            = "pending"
	StatusDelivered          = "delivered"
	StatusPartiallyDelivered = "partially_delivered"
	StatusFailed             = "failed"
	StatusExpired            = "expired"
	StatusNoDevices          = "no_devices"
)

// Trace is everything ringd knows about one push. The HTTP API returns it
// as is: integrations rely on its JSON names.
type Trace struct {
	PushID    string        `json:"push_id"`
	UserID    string        `json:"user"`
	SDKAppID  int64         `json:"sdkappid"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	Status    string        `json:"status"`
	Diagnosis string        `json:"diagnosis,omitempty"`
	Devices   []DeviceTrace `json:"devices"`
}

// DeviceTrace is one delivery: the registration chosen for one device.
type DeviceTrace struct {
	DeviceID      string         `json:"device_id,omitempty"`
	Token         string         `json:"token"`
	Kind          string         `json:"kind"`
	PushType      string         `json:"push_type"`
	CertificateID int64          `json:"certificate_id"`
	Environment   string         `json:"environment"`
	State         string         `json:"state"`
	Reason        string         `json:"reason,omitempty"`
	APNsID        string         `json:"apns_id"`
	NextAttemptAt *time.Time     `json:"next_attempt_at,omitempty"`
	Diagnosis     string         `json:"diagnosis,omitempty"`
	Attempts      []AttemptTrace `json:"attempts"`
}

// AttemptTrace is one request to APNs and ringd's reading of the answer.
type AttemptTrace struct {
	At             time.Time `json:"at"`
	Environment    string    `json:"environment"`
	Host           string    `json:"host,omitempty"`
	CertificateID  int64     `json:"certificate_id"`
	APNsID         string    `json:"apns_id,omitempty"`
	APNsUniqueID   string    `json:"apns_unique_id,omitempty"`
	Status         int       `json:"status"`
	Reason         string    `json:"reason,omitempty"`
	LatencyMS      float64   `json:"latency_ms"`
	Classification string    `json:"classification"`
	Diagnosis      string    `json:"diagnosis,omitempty"`
}

// Summary is one line of a user's recent pushes.
type Summary struct {
	PushID    string    `json:"push_id"`
	UserID    string    `json:"user"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"`
	Devices   int       `json:"devices"`
	Delivered int       `json:"delivered"`
}

// maxRecent bounds Recent, which reads each push's deliveries.
const maxRecent = 100

// Trace returns the trace of one push of an app (store.ErrNotFound, wrapped,
// for another app's push).
func (s *Service) Trace(ctx context.Context, sdkAppID int64, pushID string) (*Trace, error) {
	p, err := s.st.Push(ctx, sdkAppID, pushID)
	if err != nil {
		return nil, fmt.Errorf("push: trace %s: %w", pushID, err)
	}
	ds, err := s.st.Deliveries(ctx, pushID)
	if err != nil {
		return nil, fmt.Errorf("push: deliveries of %s: %w", pushID, err)
	}
	as, err := s.st.Attempts(ctx, pushID)
	if err != nil {
		return nil, fmt.Errorf("push: attempts of %s: %w", pushID, err)
	}
	var req Request
	_ = json.Unmarshal(p.Request, &req) // only the push type depends on it; a bad row still traces
	return buildTrace(p, req, ds, as), nil
}

// Recent lists a user's latest pushes with their status, newest first.
func (s *Service) Recent(ctx context.Context, sdkAppID int64, userID string, limit int) ([]Summary, error) {
	if limit <= 0 || limit > maxRecent {
		limit = maxRecent
	}
	ps, err := s.st.Pushes(ctx, sdkAppID, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("push: recent pushes: %w", err)
	}
	out := make([]Summary, 0, len(ps))
	for _, p := range ps {
		ds, err := s.st.Deliveries(ctx, p.ID)
		if err != nil {
			return nil, fmt.Errorf("push: deliveries of %s: %w", p.ID, err)
		}
		status, _ := pushStatus(ds)
		sum := Summary{PushID: p.ID, UserID: p.UserID, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, Status: status, Devices: len(ds)}
		for _, d := range ds {
			if d.State == stateDelivered {
				sum.Delivered++
			}
		}
		out = append(out, sum)
	}
	return out, nil
}

func buildTrace(p *store.Push, req Request, ds []store.Delivery, as []store.Attempt) *Trace {
	byDelivery := map[int64][]store.Attempt{}
	for _, a := range as {
		byDelivery[a.DeliveryID] = append(byDelivery[a.DeliveryID], a)
	}
	t := &Trace{PushID: p.ID, UserID: p.UserID, SDKAppID: p.SDKAppID, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, Devices: []DeviceTrace{}}
	for i := range ds {
		t.Devices = append(t.Devices, deviceTrace(&ds[i], req, p.ExpiresAt, byDelivery[ds[i].ID]))
	}
	t.Status, t.Diagnosis = pushStatus(ds)
	if t.Status == StatusNoDevices && len(req.ExcludeDevices) > 0 {
		t.Diagnosis = diagnoseAllExcluded(p.UserID, len(req.ExcludeDevices))
	} else if t.Status == StatusNoDevices {
		t.Diagnosis = diagnoseNoDevices(p.UserID)
	} else if t.Status == StatusFailed || t.Status == StatusPartiallyDelivered || t.Status == StatusExpired {
		t.Diagnosis = firstProblem(t.Devices, t.Diagnosis)
	}
	return t
}

func deviceTrace(d *store.Delivery, req Request, expiresAt time.Time, as []store.Attempt) DeviceTrace {
	dt := DeviceTrace{
		DeviceID: d.DeviceID, Token: d.Token, Kind: d.Kind, PushType: pushTypeOf(d, req), CertificateID: d.CertificateID,
		Environment: d.Environment, State: d.State, Reason: d.Reason, APNsID: d.APNsID, Attempts: make([]AttemptTrace, 0, len(as)),
	}
	if d.Reason == ReasonNoAlertRegistration {
		dt.PushType = alertPushType(req) // what it would have been; the VoIP token cannot carry it
	}
	if d.State == statePending && !d.NextAttemptAt.IsZero() {
		next := d.NextAttemptAt
		dt.NextAttemptAt = &next
	}
	for _, a := range as {
		dt.Attempts = append(dt.Attempts, AttemptTrace{
			At: a.At, Environment: a.Environment, Host: a.Host, CertificateID: a.CertificateID, APNsID: a.APNsID,
			APNsUniqueID: a.APNsUniqueID, Status: a.Status, Reason: a.Reason, LatencyMS: float64(a.Latency.Microseconds()) / 1000,
			Classification: a.Classification, Diagnosis: a.Diagnosis,
		})
	}
	dt.Diagnosis = diagnoseNoAttempt(d, expiresAt)
	switch {
	case dt.Diagnosis != "":
	case d.State == stateExpired && (len(as) == 0 || as[len(as)-1].Reason != d.Reason):
		// Expired by Expire, not by an answer: say so rather than repeat
		// the last answer ("retrying in ...").
		dt.Diagnosis = diagnoseStoppedPush(d.Reason)
	case len(as) > 0:
		dt.Diagnosis = as[len(as)-1].Diagnosis
	}
	return dt
}

// pushStatus sums up the deliveries' states, with a short diagnosis.
func pushStatus(ds []store.Delivery) (string, string) {
	if len(ds) == 0 {
		return StatusNoDevices, ""
	}
	count := map[string]int{}
	for _, d := range ds {
		count[d.State]++
	}
	n := len(ds)
	switch {
	case count[statePending] > 0:
		return StatusPending, fmt.Sprintf("%d of %d deliveries are waiting to be sent or retried", count[statePending], n)
	case count[stateDelivered] == n && n == 1:
		return StatusDelivered, "APNs accepted the push for the user's device"
	case count[stateDelivered] == n:
		return StatusDelivered, fmt.Sprintf("APNs accepted the push for all %d devices", n)
	case count[stateDelivered] > 0:
		return StatusPartiallyDelivered, fmt.Sprintf("APNs accepted the push for %d of %d devices", count[stateDelivered], n)
	case count[stateExpired] == n:
		return StatusExpired, "the push expired before APNs accepted it"
	}
	return StatusFailed, "no device got the push"
}

// firstProblem prefixes a summary with the first failed device's diagnosis,
// which is what a developer reads first.
func firstProblem(devs []DeviceTrace, summary string) string {
	for _, d := range devs {
		if (d.State == stateFailed || d.State == stateExpired) && d.Diagnosis != "" {
			return summary + ": " + d.Diagnosis
		}
	}
	return summary
}
