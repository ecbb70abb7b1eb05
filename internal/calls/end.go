package calls

import (
	"context"
	"net/http"
)

// End ends a call at once, whatever its state, for the app server (like
// Tencent's end_call): a call whose apps vanished mid-call would otherwise
// stay answered and keep its users busy. Invitees still ringing are told
// it was cancelled; everyone gets call.ended with reason ended_by_server.
func (s *Service) End(ctx context.Context, sdkAppID int64, callID, requestID string) (*Call, error) {
	a := Actor{SDKAppID: sdkAppID, RequestID: requestID}
	return s.idempotent(ctx, a, func() (*Call, error) {
		ac := s.activeCall(sdkAppID, callID)
		if ac == nil {
			rec, err := s.stored(ctx, sdkAppID, callID)
			if err != nil {
				return nil, err
			}
			if rec.State == StateEnded {
				return nil, errEnded(rec)
			}
			return nil, newError(CodeUnavailable, http.StatusServiceUnavailable, "call %q is active but not loaded by this server; retry", callID)
		}
		return s.change(ctx, ac, func(o *op) error {
			if o.rec.State == StateEnded {
				return errEnded(o.rec)
			}
			o.end(EndServer)
			return nil
		})
	})
}
