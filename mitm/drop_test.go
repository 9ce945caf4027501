package mitm

import (
	"io"
	"net"
	"testing"
)

func TestDropLimits(t *testing.T) {
	f := &Faults{DropAfter: 100}
	if dropReached(f, 99) || !dropReached(f, 100) || !dropReached(f, 101) {
		t.Fatal("dropReached")
	}
	if dropLimit(f, 40) != 60 || dropLimit(&Faults{}, 40) != never || dropReached(&Faults{}, 1<<40) {
		t.Fatal("dropLimit")
	}
}

// TestDropPipe drives a drop without sockets: exactly DropAfter bytes pass,
// then both sides are closed.
func TestDropPipe(t *testing.T) {
	got := make(chan []byte, 1)
	p, dial := pipeProxy(t, Config{Up: Faults{DropAfter: 100}, Refuse: 1}, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	})
	c := dial()
	go c.Write(make([]byte, 1000))
	if b := recv(t, got); len(b) != 100 {
		t.Fatalf("target got %d bytes, want 100", len(b))
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client: %v", err)
	}
	if s := p.Stats(); s.Dropped != 1 || s.Up.Drop != 1 || s.Up.Out != 100 {
		t.Fatalf("stats %+v", s)
	}
	// The next attempt is refused: closed at once.
	r := dial()
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("refused connection: %d, %v", n, err)
	}
	if s := p.Stats(); s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}
