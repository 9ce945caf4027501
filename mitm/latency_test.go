package mitm

import (
	"net"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	f := &Faults{Latency: 100 * time.Millisecond, Jitter: 30 * time.Millisecond}
	lo, hi := time.Hour, time.Duration(0)
	for off := int64(0); off < 10000; off++ {
		d := delay(f, 7, off)
		if d != delay(f, 7, off) {
			t.Fatal("delay is not deterministic")
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 70*time.Millisecond || hi > 130*time.Millisecond || hi-lo < 50*time.Millisecond {
		t.Fatalf("delays in [%v, %v], want spread over [70ms, 130ms]", lo, hi)
	}
	if d := delay(&Faults{Latency: time.Millisecond, Jitter: time.Second}, 7, 3); d < 0 {
		t.Fatalf("negative delay %v", d)
	}
	if d := delay(&Faults{}, 7, 3); d != 0 {
		t.Fatalf("delay %v with no latency", d)
	}
}

// TestLatencyPipe drives the latency without sockets: a generous lower
// bound of the delivery time, and order kept despite the jitter.
func TestLatencyPipe(t *testing.T) {
	got := make(chan []byte, 1)
	_, dial := pipeProxy(t, Config{Up: Faults{Latency: 50 * time.Millisecond, Jitter: 40 * time.Millisecond}},
		func(c net.Conn) {
			b := make([]byte, 100)
			n := 0
			for n < 100 {
				k, err := c.Read(b[n:])
				if err != nil {
					break
				}
				n += k
			}
			got <- b[:n]
		})
	c := dial()
	start := time.Now()
	for i := range 100 {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	b := recv(t, got)
	if d := time.Since(start); d < 10*time.Millisecond {
		t.Fatalf("delivered after %v, want at least 10ms", d)
	}
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("byte %d is %d: order not kept", i, b[i])
		}
	}
	if len(b) != 100 {
		t.Fatalf("got %d bytes", len(b))
	}
}
