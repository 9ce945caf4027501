package server

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// chopper returns its bytes one at a time, with a timeout before each.
type chopper struct {
	b       []byte
	timeout bool
}

func (c *chopper) Read(p []byte) (int, error) {
	if c.timeout = !c.timeout; c.timeout {
		return 0, yamux.ErrTimeout
	}
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0], c.b = c.b[0], c.b[1:]
	return 1, nil
}

// A message cut anywhere by a deadline goes on at the next call.
func TestControlReaderResumes(t *testing.T) {
	var stream bytes.Buffer
	msgs := []proto.Signal{{Name: "INT"}, {Name: "TERM"}}
	for _, m := range msgs {
		if err := proto.WriteMessage(&stream, proto.TypeSignal, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := proto.WriteMessage(&stream, proto.TypeResize, struct{}{}); err != nil {
		t.Fatal(err)
	}
	cr := &controlReader{r: &chopper{b: stream.Bytes()}}
	var got []string
	timeouts := 0
	for {
		typ, body, err := cr.next()
		if errors.Is(err, yamux.ErrTimeout) {
			timeouts++
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if typ == proto.TypeSignal {
			var s proto.Signal
			if err := proto.Decode(body, &s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s.Name)
		} else {
			got = append(got, string(body))
		}
	}
	if want := []string{"INT", "TERM", "{}"}; !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if timeouts < stream.Len() {
		t.Errorf("%d timeouts for %d bytes", timeouts, stream.Len())
	}
}

func TestControlReaderTooLong(t *testing.T) {
	for _, hdr := range [][]byte{{0, 0, 0, 0, 6}, {0, 2, 0, 2, 6}} {
		cr := &controlReader{r: bytes.NewReader(hdr)}
		if _, _, err := cr.next(); !errors.Is(err, proto.ErrTooLong) {
			t.Errorf("header %v: %v, want ErrTooLong", hdr, err)
		}
	}
}
