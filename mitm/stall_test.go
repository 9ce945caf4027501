package mitm

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func TestStallLimits(t *testing.T) {
	f := &Faults{StallAfter: 10}
	if stallReached(f, 9) || !stallReached(f, 10) || stallLimit(f, 4) != 6 || stallLimit(&Faults{}, 4) != never {
		t.Fatal("stall limits")
	}
}

// TestStallPipe drives a stall without sockets, then heals it.
func TestStallPipe(t *testing.T) {
	in := []byte("0123456789abcdefghij")
	got := make(chan []byte, 2)
	p, dial := pipeProxy(t, Config{Up: Faults{StallAfter: 10}}, func(c net.Conn) {
		b := make([]byte, 20)
		io.ReadFull(c, b[:10])
		got <- b[:10]
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(b[10:]); !isTimeout(err) {
			got <- []byte("read past the stall: " + string(b[10:10+n]))
			return
		}
		got <- nil
		c.SetReadDeadline(time.Now().Add(testTimeout))
		io.ReadFull(c, b[10:])
		got <- b[10:]
	})
	c := dial()
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	if b := recv(t, got); string(b) != "0123456789" {
		t.Fatalf("before the stall: %q", b)
	}
	if b := recv(t, got); b != nil {
		t.Fatal(string(b))
	}
	if s := p.Stats(); s.Up.Stall != 1 || s.Up.Out != 10 || s.Up.In != 20 {
		t.Fatalf("stats %+v", s)
	}
	p.SetFaults(Faults{}, Faults{})
	if b := recv(t, got); !bytes.Equal(b, in[10:]) {
		t.Fatalf("after healing: %q", b)
	}
}
