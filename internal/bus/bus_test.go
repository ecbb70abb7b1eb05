package bus

import (
	"testing"
)

func TestPublishRoutesByDevice(t *testing.T) {
	h := NewHub()
	phone := h.Subscribe(1, "bob", "phone", Foreground)
	pad := h.Subscribe(1, "bob", "ipad", Background)
	other := h.Subscribe(2, "bob", "phone", Foreground) // same user ID, another app
	tests := []struct {
		name       string
		m          Message
		wantPhone  int
		wantPad    int
		wantReturn int
	}{
		{"all devices", Message{Kind: KindEvent}, 1, 1, 2},
		{"only one", Message{Kind: KindEvent, OnlyDevice: "ipad"}, 0, 1, 1},
		{"all but one", Message{Kind: KindEvent, ExceptDevice: "ipad"}, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := h.Publish(1, "bob", tt.m); n != tt.wantReturn {
				t.Fatalf("Publish returned %d, want %d", n, tt.wantReturn)
			}
			if got := len(phone.c); got != tt.wantPhone {
				t.Fatalf("phone got %d", got)
			}
			if got := len(pad.c); got != tt.wantPad {
				t.Fatalf("ipad got %d", got)
			}
			drain(phone)
			drain(pad)
		})
	}
	if len(other.c) != 0 {
		t.Fatal("a message crossed apps")
	}
}

func drain(s *Subscription) {
	for len(s.c) > 0 {
		<-s.c
	}
}

func TestDevicesAndState(t *testing.T) {
	h := NewHub()
	a := h.Subscribe(1, "bob", "phone", Background)
	b := h.Subscribe(1, "bob", "phone", Background)
	h.Subscribe(1, "bob", "ipad", Foreground)
	devs := map[string]Device{}
	for _, d := range h.Devices(1, "bob") {
		devs[d.DeviceID] = d
	}
	if devs["phone"].Sessions != 2 || devs["phone"].Foreground || !devs["ipad"].Foreground {
		t.Fatalf("devices: %+v", devs)
	}
	h.SetState(a, Foreground)
	for _, d := range h.Devices(1, "bob") {
		if d.DeviceID == "phone" && !d.Foreground {
			t.Fatal("phone should be in the foreground after one session said so")
		}
	}
	h.Unsubscribe(a)
	h.Unsubscribe(a)
	h.Unsubscribe(b)
	if h.Count() != 1 || len(h.Devices(1, "bob")) != 1 {
		t.Fatalf("count %d, devices %+v", h.Count(), h.Devices(1, "bob"))
	}
}

func TestSlowSessionIsDropped(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(1, "bob", "phone", Foreground)
	for range SessionBuffer + 1 {
		h.Publish(1, "bob", Message{Kind: KindEvent})
	}
	select {
	case <-s.Dropped():
	default:
		t.Fatal("a session that fell behind was not dropped")
	}
}
