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

// ptyDrain is how long the pty's output may pause, once the command
// exited, before it counts as ended: a background process that keeps the
// terminal open must not keep the session open.
const ptyDrain = 100 * time.Millisecond

// errAgain is a read of a non-blocking descriptor that has nothing now.
var errAgain = errors.New("server: nothing to read yet")

// output copies one of a command's outputs (a pipe, or the pty master) to
// its stream and half-closes the stream at the end. It holds no goroutine
// while the command is silent: the poller starts one when bytes come, and
// it copies until the descriptor has nothing more for now. When the stream
// fails (the session is gone) it goes on draining so that the command
// never blocks on a full pipe.
type output struct {
	f     *os.File // non-blocking
	rc    syscall.RawConn
	raw   rawRead // the read in progress (one copy at a time)
	rawFn func(uintptr) bool
	dst   *yamux.Stream
	pty   bool         // EIO ends the output; after the exit, ptyDrain of silence does
	spawn func(func()) // runs a function in a goroutine of the session
	ended func()       // called once, after the stream was closed
	w     *watch
	// failed: the stream failed, drain to nowhere. Only the copy, one at
	// a time, uses it.
	failed bool

	mu    sync.Mutex
	busy  bool // a copy runs
	done  bool
	last  time.Time   // when bytes last came
	drain *time.Timer // after the exit, on a pty
}

// start waits for the output with the poller.
func (o *output) start(pl *poller) error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return err
	}
	o.rc, o.rawFn = rc, o.raw.read
	o.mu.Lock() // ready waits for w
	defer o.mu.Unlock()
	o.w, err = pl.watch(o.f, o.ready)
	return err
}

// ready runs on the poller's goroutine: bytes (or the end) are there.
func (o *output) ready(*watch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.busy = true
	o.spawn(o.copy)
}

// copy copies what there is, then waits with the poller again.
func (o *output) copy() {
	for {
		buf, n, err := o.read()
		if n > 0 {
			if !o.failed {
				if _, werr := o.dst.Write(buf[:n]); werr != nil {
					o.failed = true
				}
			}
			copyBufs.Put(buf)
			o.mu.Lock()
			o.last = time.Now()
			o.mu.Unlock()
			continue
		}
		o.mu.Lock()
		if o.done { // shut meanwhile, which finished the output
			o.busy = false
			o.mu.Unlock()
			return
		}
		if err == errAgain {
			o.busy = false
			o.mu.Unlock()
			o.w.rearm()
			return
		}
		o.done = true
		o.mu.Unlock()
		o.finish()
		return
	}
}

// read reads what the descriptor has now into a buffer of copyBufs, which
// the caller gives back. It returns errAgain when there is nothing yet,
// io.EOF at the end.
func (o *output) read() (*[copyBufSize]byte, int, error) {
	buf := copyBufs.Get().(*[copyBufSize]byte)
	o.raw.buf = buf
	err := o.rc.Read(o.rawFn)
	n, rerr := o.raw.n, o.raw.err
	o.raw = rawRead{}
	switch {
	case err != nil:
	case rerr == syscall.EAGAIN:
		err = errAgain
	case rerr == syscall.EIO && o.pty:
		// Linux returns EIO once the last process holding the terminal
		// closed it: that is the end of the output.
		err = io.EOF
	case rerr != nil:
		err = &os.PathError{Op: "read", Path: o.f.Name(), Err: rerr}
	case n == 0:
		err = io.EOF
	}
	if n <= 0 {
		copyBufs.Put(buf)
		return nil, 0, err
	}
	return buf, n, nil
}

// rawRead is one read(2) of a descriptor into buf, never waiting.
type rawRead struct {
	buf *[copyBufSize]byte
	n   int
	err error
}

func (r *rawRead) read(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.buf[:])
		if r.err != syscall.EINTR {
			return true
		}
	}
}

// commandExited starts the drain of a pty: once the output pauses for
// ptyDrain, it ended. It runs on the poller's goroutine.
func (o *output) commandExited() {
	if !o.pty {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		o.last = time.Now()
		o.drain = time.AfterFunc(ptyDrain, o.drained)
	}
}

// drained ends a pty's output after the exit if it paused for ptyDrain.
func (o *output) drained() {
	o.mu.Lock()
	if o.done {
		o.mu.Unlock()
		return
	}
	if quiet := time.Since(o.last); o.busy || quiet < ptyDrain {
		wait := ptyDrain
		if !o.busy {
			wait -= quiet
		}
		o.drain.Reset(wait)
		o.mu.Unlock()
		return
	}
	o.done = true
	o.mu.Unlock()
	o.finish()
}

// shut ends a pipe's output because its reader on the client went away
// (proto.OutputClosed): the stream is closed, and so is reshd's read end of
// the pipe, the only one, so that the command's next write to it fails
// (EPIPE, or SIGPIPE) as it would have with the client's reader on the
// pipe itself. A copy running meanwhile notices done and stops.
func (o *output) shut() {
	o.mu.Lock()
	if o.done {
		o.mu.Unlock()
		return
	}
	o.done = true
	o.mu.Unlock()
	o.finish()
	// A read in progress holds the descriptor: it is closed once the
	// read returns.
	_ = o.f.Close()
}

// finish ends the output, once done was set.
func (o *output) finish() {
	o.w.stop()
	o.mu.Lock()
	if o.drain != nil {
		o.drain.Stop()
	}
	o.mu.Unlock()
	_ = o.dst.Close()
	o.ended()
}

// inputIdle is how long a client's input may pause before its stream gives
// back its receive buffer.
const inputIdle = 100 * time.Millisecond

// copyIn copies the client's input to the command until either ends. It
// waits for input with a read of nothing, holding no buffer, and lets the
// stream give back its receive buffer after a pause of inputIdle.
func copyIn(dst io.Writer, src *yamux.Stream, ended <-chan struct{}) {
	for {
		_ = src.SetReadDeadline(time.Now().Add(inputIdle))
		_, err := src.Read(nil)
		if errors.Is(err, yamux.ErrTimeout) {
			src.Shrink()
			_ = src.SetReadDeadline(time.Time{})
			// A relayed session's streams outlive it on the link: its
			// end (closed before it sets a past deadline on them) wakes
			// this read with a timeout instead of an EOF.
			if isClosed(ended) {
				return
			}
			_, err = src.Read(nil)
		}
		if errors.Is(err, yamux.ErrTimeout) && isClosed(ended) {
			return
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

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
