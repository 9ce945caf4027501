package client

import (
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// pumps tells how the stream copies are going.
type pumps struct {
	outDone chan struct{} // one value per output at its end
	broken  chan struct{} // closed when a local reader is gone
	escaped chan struct{} // closed when "~." was typed
}

// pump starts the copies: stdout and stderr kept apart, each until its EOF
// (waited for by wg), stdout to stdout, and stdin (not waited for: a read
// from a terminal cannot be interrupted), filtered for escapes when escapes
// is true.
func (r *runner) pump(st *streams, wg *sync.WaitGroup, escapes bool, stdout io.Writer) *pumps {
	p := &pumps{outDone: make(chan struct{}, 2), broken: make(chan struct{}), escaped: make(chan struct{})}
	var breakOnce sync.Once
	for _, c := range []struct {
		w    io.Writer
		s    *yamux.Stream
		kind string
	}{{stdout, st.stdout, proto.KindStdout}, {r.stderr, st.stderr, proto.KindStderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.guard()
			if r.copyOut(c.w, c.s, c.kind) {
				breakOnce.Do(func() { close(p.broken) })
			}
			p.outDone <- struct{}{}
		}()
	}
	go func() {
		defer r.guard()
		r.copyStdin(st.stdin, escapes, p.escaped)
	}()
	return p
}

// copyOut copies one output of the command to w until its end. When w's
// reader went away (EPIPE) it tells the server, so that the command's
// writes fail too, and reports it; the rest is drained so that the command
// is not blocked.
func (r *runner) copyOut(w io.Writer, s io.Reader, kind string) (broken bool) {
	_, err := io.Copy(w, s)
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.EPIPE) {
		_ = r.send(proto.TypeOutputClosed, proto.OutputClosed{Stream: kind})
		broken = true
	}
	_, _ = io.Copy(io.Discard, s)
	return broken
}

// copyStdin sends stdin to the command; without escapes (no terminal) it
// half-closes the stream at EOF so the command reads EOF too (on a
// pseudo-terminal, reshd then types the terminal's EOF character).
func (r *runner) copyStdin(stdin io.WriteCloser, escapes bool, escaped chan<- struct{}) {
	if !escapes {
		if _, err := io.Copy(stdin, r.env.Stdin); err == nil {
			stdin.Close()
			r.debugf(2, "stdin ended")
		}
		return
	}
	e := escaper{help: func() { r.stderr.printf("%s", escapeHelp(r.eol())) }}
	buf := make([]byte, 4096)
	for {
		n, err := r.env.Stdin.Read(buf)
		if n > 0 {
			out, quit := e.feed(buf[:n])
			if len(out) > 0 {
				if _, werr := stdin.Write(out); werr != nil {
					return
				}
			}
			if quit {
				close(escaped)
				return
			}
		}
		if err != nil {
			return
		}
	}
}
