package gateway

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","type":"invite","data":{"invitees":["bob"],"media":"video","timeout":30,"push":{"voip":true}}}`,
		`{"id":"2","type":"accept","data":{"call_id":"c1"}}`,
		`{"id":"3","type":"reject","data":{"call_id":"c1","reason":"busy"}}`,
		`{"id":"4","type":"invite_more","data":{"call_id":"c1","invitees":["carol"]}}`,
		`{"id":"5","type":"state","data":{"state":"background"}}`,
		`{"id":"6","type":"logout"}`,
		`{"type":"ping"}`,
		`{"id":"7","type":"ping","data":null}`,
		`{"type":"x","id":"8","data":{"a":[1,{"b":2}]}}`,
		`{"id":"\u0000","type":"ping"}`,
		`[]`, `"x"`, `{`, `{"id":`, `{"id":"a"} trailing`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id := peekID(b)
		if id != "" && checkID(id) != nil {
			t.Fatalf("peekID returned an unsafe id %q", id)
		}
		req, err := DecodeFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FrameError", err)
			}
			if fe.ID != "" && checkID(fe.ID) != nil {
				t.Fatalf("error reply would echo an unsafe id %q", fe.ID)
			}
			if fe.Code == "" || fe.Message == "" {
				t.Fatalf("empty error %+v", fe)
			}
			// The error reply must encode.
			if f := errorReply(fe.ID, fe.Code, fe.Message); !json.Valid(f.data) {
				t.Fatalf("error reply is not JSON: %q", f.data)
			}
			return
		}
		if req.ID == "" && req.Type != TypePing {
			t.Fatalf("accepted a frame without id: %+v", req)
		}
		if !requestTypes[req.Type] {
			t.Fatalf("accepted unknown type %q", req.Type)
		}
		data, err := DecodeData(req.Type, req.Data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty data error")
			}
			return
		}
		switch d := data.(type) {
		case *CallRef:
			if d.CallID == "" || len(d.CallID) > MaxCallIDLen {
				t.Fatalf("bad call_id accepted: %q", d.CallID)
			}
		case *RejectData:
			if d.Reason != "declined" && d.Reason != "busy" {
				t.Fatalf("bad reason accepted: %q", d.Reason)
			}
		case *StateData:
			if d.State != "foreground" && d.State != "background" {
				t.Fatalf("bad state accepted: %q", d.State)
			}
		case *InviteMoreData:
			if len(d.Invitees) == 0 {
				t.Fatal("empty invitees accepted")
			}
		}
	})
}
