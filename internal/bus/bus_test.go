package bus

import (
	"slices"
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

// A SubscribeFunc session gets every message through its function, is a
// session like any other for presence, and a refusal is not counted as
// delivered.
func TestSubscribeFunc(t *testing.T) {
	h := NewHub()
	var got []string
	accept := true
	s := h.SubscribeFunc(1, "bob", "phone", Background, func(m Message) bool {
		if accept {
			got = append(got, string(m.Payload))
		}
		return accept
	})
	if d := h.Devices(1, "bob"); len(d) != 1 || d[0].Foreground || h.Count() != 1 {
		t.Fatalf("devices %+v, count %d", d, h.Count())
	}
	if n := h.Publish(1, "bob", Message{Kind: KindEvent, Payload: []byte("1")}); n != 1 {
		t.Fatalf("delivered to %d", n)
	}
	h.Broadcast(Message{Kind: KindReconnect, Payload: []byte("2")})
	accept = false
	if n := h.Publish(1, "bob", Message{Kind: KindEvent, Payload: []byte("3")}); n != 0 {
		t.Fatalf("a refused message counted as delivered to %d", n)
	}
	if want := []string{"1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	h.Unsubscribe(s)
	h.Unsubscribe(s)
	if h.Count() != 0 {
		t.Fatalf("count %d after unsubscribe", h.Count())
	}
}
