package server

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeTee is ltee's stdin and stdout when both are pipes: each Read first
// duplicates what it is about to return into stdout with tee(2), so that
// stdout gets the data without a copy through reshd; Write then has
// nothing left to do. Should tee fail (stdout broken, say), Write reports
// the error once, and from then on Read only reads and Write writes.
type pipeTee struct {
	in, out   *os.File
	rin, rout syscall.RawConn
	teed      bool  // the data of the last Read is in stdout already
	err       error // tee's failure, for the next Write
	plain     bool  // tee is over: read and write
}

// newPipeTee returns in and out as the reader and writer of ltee's copy:
// a pipeTee if both are pipes, else themselves.
func newPipeTee(in, out *os.File) (io.Reader, io.Writer) {
	if !isPipe(in) || !isPipe(out) {
		return in, out
	}
	rin, err1 := in.SyscallConn()
	rout, err2 := out.SyscallConn()
	if err1 != nil || err2 != nil {
		return in, out
	}
	p := &pipeTee{in: in, out: out, rin: rin, rout: rout}
	return p, teeWriter{p}
}

func isPipe(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeNamedPipe != 0
}

func (p *pipeTee) Read(b []byte) (int, error) {
	p.teed = false
	if p.plain {
		return p.in.Read(b)
	}
	n, err := p.tee(len(b))
	switch {
	case err != nil:
		// Reading goes on; Write tells Copy what happened to stdout.
		p.plain, p.err = true, &os.PathError{Op: "write", Path: p.out.Name(), Err: err}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
		return p.in.Read(b)
	case n == 0:
		// stdin's end, or data tee did not see: a plain read tells, and
		// Write then writes what it returns.
		return p.in.Read(b)
	}
	p.teed = true
	// The bytes duplicated are still in stdin: read them.
	return io.ReadFull(p.in, b[:n])
}

// tee duplicates up to max bytes from stdin to stdout, waiting for data in
// stdin and room in stdout; 0 means stdin's end. tee(2) says EAGAIN for an
// empty stdin and for a full stdout alike: poll(2) tells which. Each wait
// is armed before the try it follows, so no wake-up is lost.
func (p *pipeTee) tee(max int) (int, error) {
	var n int64
	var terr, werr error
	rerr := p.rin.Read(func(in uintptr) bool {
		empty := false
		werr = p.rout.Write(func(out uintptr) bool {
			for {
				n, terr = unix.Tee(int(in), int(out), max, unix.SPLICE_F_NONBLOCK)
				if !errors.Is(terr, unix.EAGAIN) {
					return true
				}
				fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}, {Fd: int32(out), Events: unix.POLLOUT}}
				if _, err := unix.Poll(fds, 0); err != nil {
					terr = err
					return true
				}
				switch {
				case fds[0].Revents == 0:
					empty = true
					return true // wait for data in stdin
				case fds[1].Revents == 0:
					return false // wait for room in stdout
				}
			}
		})
		return werr != nil || !empty
	})
	for _, err := range []error{rerr, werr, terr} {
		if err != nil {
			return 0, err
		}
	}
	return int(n), nil
}

// teeWriter is stdout for ltee's copy: what Read teed is there already.
type teeWriter struct{ p *pipeTee }

func (w teeWriter) Write(b []byte) (int, error) {
	switch {
	case w.p.teed:
		return len(b), nil
	case w.p.err != nil:
		err := w.p.err
		w.p.err = nil
		return 0, err
	}
	return w.p.out.Write(b)
}
