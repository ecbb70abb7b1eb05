package clock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeAdvanceRunsDueTimersInDeadlineOrder(t *testing.T) {
	f := NewFake(t0)
	var got []string
	var seen []time.Time
	add := func(d time.Duration, name string) Timer {
		return f.AfterFunc(d, func() { got = append(got, name); seen = append(seen, f.Now()) })
	}
	add(3*time.Second, "c")
	add(time.Second, "a")
	add(2*time.Second, "b1")
	add(2*time.Second, "b2")
	stopped := add(1500*time.Millisecond, "stopped")
	add(10*time.Second, "later")
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true then false")
	}
	f.Advance(3 * time.Second)
	want := []string{"a", "b1", "b2", "c"}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if !seen[0].Equal(t0.Add(time.Second)) || !seen[3].Equal(t0.Add(3*time.Second)) {
		t.Errorf("timers saw %v", seen)
	}
	if !f.Now().Equal(t0.Add(3 * time.Second)) {
		t.Errorf("now %v", f.Now())
	}
	if f.Pending() != 1 {
		t.Errorf("pending %d, want 1", f.Pending())
	}
	if d, ok := f.NextDeadline(); !ok || !d.Equal(t0.Add(10*time.Second)) {
		t.Errorf("next deadline %v %v", d, ok)
	}
}

func TestFakeTimerScheduledByTimerInWindowFires(t *testing.T) {
	f := NewFake(t0)
	var n atomic.Int32
	f.AfterFunc(time.Second, func() {
		n.Add(1)
		f.AfterFunc(time.Second, func() { n.Add(10) })
		f.AfterFunc(time.Hour, func() { n.Add(100) })
	})
	f.Advance(2 * time.Second)
	if n.Load() != 11 {
		t.Fatalf("n = %d, want 11", n.Load())
	}
}

func TestFakeZeroAndNegativeDelayFireOnAdvanceZero(t *testing.T) {
	f := NewFake(t0)
	var n atomic.Int32
	f.AfterFunc(0, func() { n.Add(1) })
	f.AfterFunc(-time.Minute, func() { n.Add(1) })
	if n.Load() != 0 {
		t.Fatal("fired before Advance")
	}
	f.Advance(0)
	if n.Load() != 2 {
		t.Fatalf("n = %d", n.Load())
	}
}

func TestFakeSet(t *testing.T) {
	f := NewFake(t0)
	fired := false
	tm := f.AfterFunc(time.Minute, func() { fired = true })
	f.Set(t0.Add(59 * time.Second))
	if fired {
		t.Fatal("fired early")
	}
	f.Set(t0.Add(time.Hour))
	if !fired || tm.Stop() {
		t.Fatal("not fired or still stoppable")
	}
	f.Set(t0)
	if !f.Now().Equal(t0) {
		t.Fatal("Set back")
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake(t0)
	var n atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				tm := f.AfterFunc(time.Duration(i+j)*time.Millisecond, func() { n.Add(1) })
				if j%5 == 0 {
					tm.Stop()
				}
				f.Advance(time.Millisecond)
				_ = f.Now()
			}
		}()
	}
	wg.Wait()
	f.Advance(time.Hour)
	if f.Pending() != 0 {
		t.Fatalf("pending %d", f.Pending())
	}
	if n.Load() > 400 || n.Load() < 320 {
		t.Fatalf("fired %d", n.Load())
	}
}

func TestReal(t *testing.T) {
	c := Real()
	if time.Since(c.Now()) > time.Minute {
		t.Fatal("Now")
	}
	done := make(chan struct{})
	c.AfterFunc(0, func() { close(done) })
	<-done
	if c.AfterFunc(time.Hour, func() {}).Stop() != true {
		t.Fatal("Stop")
	}
}
