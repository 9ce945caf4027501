//go:build linux

package server

import (
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/yamux"

	"resh/access"
	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// startBroker runs a broker on a yamux session over a socket pair, without
// a command or a connection; serve runs on each stream the broker opens
// towards the client. Everything stops with the test.
func startBroker(t testing.TB, serve func(*yamux.Stream)) *broker {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	ss, err := proto.Server(conns[0])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := proto.Client(conns[1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBroker(ss, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.serve() }()
	go func() {
		defer wg.Done()
		for {
			st, err := cs.AcceptStream()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = st.Close() }()
				serve(st)
			}()
		}
	}()
	t.Cleanup(func() {
		b.close()
		_ = cs.Close()
		_ = ss.Close()
		wg.Wait()
	})
	return b
}

// served is what the client half said of one transfer it served.
type served struct {
	open proto.TransferOpen
	err  error
}

// realClient serves transfers as resh does, with the real client halves,
// from and into dir; each transfer's outcome comes on the returned
// channel.
func realClient(t testing.TB, dir string) (func(*yamux.Stream), <-chan served) {
	t.Helper()
	dirs, err := access.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dirs.Close() })
	results := make(chan served, 64)
	return func(st *yamux.Stream) {
		var open proto.TransferOpen
		if err := proto.Expect(st, proto.TypeTransferOpen, &open); err != nil {
			results <- served{err: err}
			return
		}
		var err error
		if open.Op == proto.OpRead {
			err = cat.ServeRead(t.Context(), st, open, dirs, nil)
		} else {
			err = tee.ServeWrite(t.Context(), st, open, dirs, nil)
		}
		results <- served{open: open, err: err}
	}, results
}

// pipe returns both ends of a pipe, closed with the test.
func pipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}

// drain reads r to its end in the background; the result comes on the
// channel.
func drain(r io.Reader) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		ch <- b
	}()
	return ch
}

// feed writes data to w and closes it, in the background.
func feed(w *os.File, data string) {
	go func() {
		_, _ = io.WriteString(w, data)
		_ = w.Close()
	}()
}

// hideFile hides that a writer or reader is an *os.File, so that lcat and
// ltee cannot pass it and fall back on the relay.
type hideFile struct{ f *os.File }

func (h hideFile) Read(p []byte) (int, error)  { return h.f.Read(p) }
func (h hideFile) Write(p []byte) (int, error) { return h.f.Write(p) }
