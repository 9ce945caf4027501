package mitm

import (
	"bytes"
	"net"
	"testing"
)

func TestPieceLen(t *testing.T) {
	for _, c := range []struct {
		f       Faults
		n, want int
	}{
		{Faults{}, 1000, 1000},
		{Faults{Slice: 7}, 1000, 7},
		{Faults{Slice: 7}, 3, 3},
		{Faults{Bandwidth: 1000}, 1000, 20},
		{Faults{Bandwidth: 10}, 1000, 1},
		{Faults{Bandwidth: 1 << 30}, 1 << 20, maxPace},
		{Faults{Bandwidth: 1000, Slice: 5}, 1000, 5},
	} {
		if got := pieceLen(&c.f, c.n); got != c.want {
			t.Errorf("pieceLen(%+v, %d) = %d, want %d", c.f, c.n, got, c.want)
		}
	}
}

// TestSlicePipe drives slicing without sockets: on a pipe each write is
// read separately, so every read is at most Slice bytes.
func TestSlicePipe(t *testing.T) {
	in := randomBytes(1000, 30)
	got := make(chan []byte, 1)
	_, dial := pipeProxy(t, Config{Up: Faults{Slice: 7}}, func(c net.Conn) {
		var all []byte
		b := make([]byte, 100)
		for len(all) < len(in) {
			n, err := c.Read(b)
			if err != nil {
				break
			}
			if n > 7 {
				got <- nil
				return
			}
			all = append(all, b[:n]...)
		}
		got <- all
	})
	c := dial()
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	if b := recv(t, got); !bytes.Equal(b, in) {
		t.Fatalf("got %d bytes (nil: a read of more than 7 bytes)", len(b))
	}
}
