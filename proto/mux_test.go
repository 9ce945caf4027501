package proto

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"
)

// writes records every Write it passes on.
type writes struct {
	io.ReadWriteCloser
	mu    sync.Mutex
	sizes []int
	all   bytes.Buffer
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.sizes = append(w.sizes, len(p))
	w.all.Write(p)
	w.mu.Unlock()
	return w.ReadWriteCloser.Write(p)
}

type discard struct{ io.Reader }

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

func muxHeader(typ byte, stream, length uint32) []byte {
	h := make([]byte, muxHeaderLen)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], stream)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func TestCoalescerJoinsHeaderAndBody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  int
		sizes []int
	}{
		{"small body", 100, []int{muxHeaderLen + 100}},
		{"one record", maxRecord - muxHeaderLen, []int{maxRecord}},
		{"long body", 40 << 10, []int{maxRecord, 40<<10 - (maxRecord - muxHeaderLen)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &writes{ReadWriteCloser: discard{}}
			c := coalesce(w)
			hdr := muxHeader(muxTypeData, 1, uint32(tc.body))
			body := bytes.Repeat([]byte{7}, tc.body)
			if n, err := c.Write(hdr); n != len(hdr) || err != nil {
				t.Fatalf("header: %d %v", n, err)
			}
			if n, err := c.Write(body); n != len(body) || err != nil {
				t.Fatalf("body: %d %v", n, err)
			}
			if !slicesEqual(w.sizes, tc.sizes) {
				t.Fatalf("writes %v, want %v", w.sizes, tc.sizes)
			}
			if !bytes.Equal(w.all.Bytes(), append(hdr, body...)) {
				t.Fatal("bytes changed")
			}
		})
	}
	// Headers without a body pass at once: a window update, an empty data
	// frame (a FIN).
	for _, hdr := range [][]byte{muxHeader(1, 1, 65536), muxHeader(muxTypeData, 1, 0)} {
		w := &writes{ReadWriteCloser: discard{}}
		if _, err := coalesce(w).Write(hdr); err != nil || len(w.sizes) != 1 {
			t.Fatalf("header %x: writes %v, %v", hdr, w.sizes, err)
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Through real yamux sessions: the data arrive exact, and no data header
// travels alone.
func TestMuxSessionsCoalesce(t *testing.T) {
	var w *writes
	cl, srv := sessions(t, func(c net.Conn) io.ReadWriteCloser { w = &writes{ReadWriteCloser: c}; return w })
	data := bytes.Repeat([]byte("resh coalesces "), 100_000)
	errc := make(chan error, 1)
	go func() {
		st, err := cl.OpenStream()
		if err == nil {
			_, err = st.Write(data)
			if err == nil {
				err = st.Close()
			}
		}
		errc <- err
	}()
	st, err := srv.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	all := w.all.Bytes()
	for off, i := 0, 0; i < len(w.sizes); off, i = off+w.sizes[i], i+1 {
		p := all[off : off+w.sizes[i]]
		if len(p) == muxHeaderLen && p[1] == muxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
			t.Fatalf("write %d is a lone data header", i)
		}
	}
}

// sessions starts resh's yamux client and server over net.Pipe, the
// client's end seen through wrap (nil: as is); both close with the test.
func sessions(t *testing.T, wrap func(net.Conn) io.ReadWriteCloser) (cl, srv *yamux.Session) {
	t.Helper()
	a, b := net.Pipe()
	var ca io.ReadWriteCloser = a
	if wrap != nil {
		ca = wrap(a)
	}
	cl, err := Client(ca)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = Server(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); srv.Close() })
	return cl, srv
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
