package server

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
)

// copyBufSize is the size of the buffers a session's bytes are copied
// through, between the command and its streams.
const copyBufSize = 32 << 10

// copyBufs holds the copy buffers of every session: a copy takes one once
// there are bytes to copy and gives it back before it waits for more, so
// that an idle session holds none.
var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// pollReader reads a non-blocking file in Go's netpoller (a pipe, a pty
// master) into a buffer taken from copyBufs only once it has bytes.
type pollReader struct {
	f *os.File
}

// next waits until the file has bytes, and returns them in a buffer of
// copyBufs that the caller gives back. At the end of the file it returns
// io.EOF; a deadline of the file ends the wait with
// os.ErrDeadlineExceeded.
func (r *pollReader) next() (*[copyBufSize]byte, int, error) {
	rc, err := r.f.SyscallConn()
	if err != nil {
		return nil, 0, err
	}
	var (
		buf  *[copyBufSize]byte
		n    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		b := copyBufs.Get().(*[copyBufSize]byte)
		for {
			n, rerr = syscall.Read(int(fd), b[:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			copyBufs.Put(b)
			return false // wait until readable
		}
		buf = b
		return true
	})
	switch {
	case err != nil:
	case rerr != nil:
		err = &os.PathError{Op: "read", Path: r.f.Name(), Err: rerr}
	case n <= 0:
		err = io.EOF
	}
	if n <= 0 && buf != nil {
		copyBufs.Put(buf)
		buf, n = nil, 0
	}
	return buf, n, err
}

// output is where a command's output comes from.
type output interface {
	next() (*[copyBufSize]byte, int, error)
}

// copyOut copies a command's output to its stream and half-closes the
// stream. When the stream fails (the session is gone) it goes on draining
// so that the command never blocks on a full pipe.
func copyOut(dst *yamux.Stream, src output) {
	failed := false
	for {
		buf, n, err := src.next()
		if n > 0 && !failed {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				failed = true
			}
		}
		if buf != nil {
			copyBufs.Put(buf)
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
}

// inputIdle is how long a client's input may pause before its stream gives
// back its receive buffer.
const inputIdle = 100 * time.Millisecond

// copyIn copies the client's input to the command until either ends. It
// waits for input with a read of nothing, holding no buffer, and lets the
// stream give back its receive buffer after a pause of inputIdle.
func copyIn(dst io.Writer, src *yamux.Stream) {
	for {
		_ = src.SetReadDeadline(time.Now().Add(inputIdle))
		_, err := src.Read(nil)
		if errors.Is(err, yamux.ErrTimeout) {
			src.Shrink()
			_ = src.SetReadDeadline(time.Time{})
			_, err = src.Read(nil)
		}
		if err != nil {
			return
		}
		buf := copyBufs.Get().(*[copyBufSize]byte)
		n, err := src.Read(buf[:])
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		copyBufs.Put(buf)
		if err != nil {
			return
		}
	}
}
