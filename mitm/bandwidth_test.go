package mitm

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	var pc pacer
	now := time.Unix(1000, 0)
	if w := pc.take(1000, 100, now); w != 0 {
		t.Fatalf("first piece waits %v", w)
	}
	if w := pc.take(1000, 100, now); w != 100*time.Millisecond {
		t.Fatalf("second piece waits %v, want 100ms", w)
	}
	// Sending at the booked times.
	var total time.Duration
	for range 10 {
		w := pc.take(1000, 100, now)
		now = now.Add(w)
		total += w
	}
	if total != 1100*time.Millisecond { // 200ms already booked, then 9 × 100ms
		t.Fatalf("10 pieces waited %v in all", total)
	}
	// Idle time is not saved up as a burst.
	now = now.Add(time.Hour)
	pc.take(1000, 100, now)
	if w := pc.take(1000, 100, now); w != 100*time.Millisecond {
		t.Fatalf("after idling, waits %v", w)
	}
	if w := pc.take(0, 1<<20, now); w != 0 {
		t.Fatalf("unlimited waits %v", w)
	}
}

// TestBandwidthPipe drives the limit without sockets: 20000 bytes at 100000
// bytes per second take at least about 200ms.
func TestBandwidthPipe(t *testing.T) {
	got := make(chan int, 1)
	_, dial := pipeProxy(t, Config{Down: Faults{Bandwidth: 100000}}, func(c net.Conn) {
		c.Write(make([]byte, 20000))
		got <- 0
	})
	c := dial()
	start := time.Now()
	if n, err := io.ReadFull(c, make([]byte, 20000)); err != nil {
		t.Fatalf("read %d: %v", n, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("took %v, want at least 150ms", d)
	}
	recv(t, got)
}
