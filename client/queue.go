package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// awaitStart reads control until Started. Before it, a master may send
// Queued any number of times: the session waits for a free executor
// (../proto/spec.md §5). The first Queued lifts resh's own StartTimeout:
// the master's queue timeout bounds the wait from then on and ends it with
// an Error. Each Queued updates the waiting line (queueLine). While
// queued, a signal resh would forward (INT, TERM, HUP, QUIT) ends resh
// instead, as there is no command to deliver it to, and the end of the
// session takes it out of the queue; a terminal in raw mode for a
// pseudo-terminal is cooked meanwhile, so that ^C is such a signal, and
// raw again at Started.
func (r *runner) awaitStart(control *yamux.Stream, sigs <-chan os.Signal, tty bool, stdinFD int, stdinTerm, stderrTerm bool) (proto.Started, error) {
	timeout := r.startTimeout()
	_ = control.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = control.SetReadDeadline(time.Time{}) }()
	line := r.queueLine(stderrTerm)
	defer line.clear()
	var watch *queueWatch
	cooked := false // the terminal was raw, and is cooked while queued
	stopWatching := func() os.Signal {
		if watch == nil {
			return nil
		}
		s := watch.stop()
		watch = nil
		return s
	}
	defer stopWatching()
	for {
		t, body, err := proto.ReadMessage(control)
		if err != nil {
			if s := stopWatching(); s != nil {
				return proto.Started{}, fmt.Errorf("%v while waiting for a free executor", s)
			}
			return proto.Started{}, r.startError(err, timeout, "the command started")
		}
		switch t {
		case proto.TypeQueued:
			var q proto.Queued
			if err := proto.Decode(body, &q); err != nil {
				return proto.Started{}, fmt.Errorf("protocol error: %w", err)
			}
			if watch == nil {
				_ = control.SetReadDeadline(time.Time{})
				watch = r.watchQueued(control, sigs, tty, stdinFD, stdinTerm)
				if r.raw.Load() {
					// Cooked while queued, so that ^C interrupts
					// resh: nothing reads what is typed yet.
					r.restore()
					cooked = true
				}
			}
			line.show(q.Ahead)
		case proto.TypeStarted:
			var started proto.Started
			if err := proto.Decode(body, &started); err != nil {
				return started, fmt.Errorf("protocol error: %w", err)
			}
			if s := stopWatching(); s != nil {
				// It came as the command started: the command gets it.
				_ = r.send(proto.TypeSignal, proto.Signal{Name: signalName(s)})
			}
			if cooked {
				line.clear() // before raw mode changes line endings
				if err := r.makeRaw(stdinFD); err != nil {
					return started, err
				}
			}
			return started, nil
		case proto.TypeError:
			var e proto.Error
			if err := proto.Decode(body, &e); err != nil {
				return proto.Started{}, fmt.Errorf("protocol error: %w", err)
			}
			return proto.Started{}, errors.New(e.Message)
		default:
			return proto.Started{}, fmt.Errorf("protocol error: %w: got type %d, want %d", proto.ErrUnexpected, t, proto.TypeStarted)
		}
	}
}

// queueWatch watches resh's signals while the session is queued.
type queueWatch struct {
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the watcher has returned
	sig  os.Signal     // the signal that ended the wait; read after done
}

// watchQueued starts watching sigs: a window change is sent as Resize (a
// pseudo-terminal's size, applied when the command starts), a signal resh
// forwards interrupts the read of control (its deadline set to now) and is
// kept for stop to return.
func (r *runner) watchQueued(control *yamux.Stream, sigs <-chan os.Signal, tty bool, fd int, isTerm bool) *queueWatch {
	w := &queueWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer r.guard()
		for {
			select {
			case <-w.quit:
				return
			case s := <-sigs:
				if s == syscall.SIGWINCH {
					if rows, cols := r.size(fd, isTerm); tty && rows > 0 {
						_ = r.send(proto.TypeResize, proto.Resize{Rows: rows, Cols: cols})
					}
					continue
				}
				if signalName(s) == "" {
					continue
				}
				w.sig = s
				_ = control.SetReadDeadline(time.Now())
				return
			}
		}
	}()
	return w
}

// stop ends the watch and returns the signal that interrupted the wait,
// nil if none did.
func (w *queueWatch) stop() os.Signal {
	close(w.quit)
	<-w.done
	return w.sig
}

// queueLine tells the user that the session waits for a free executor,
// "resh: waiting for a free executor (N ahead)": on a terminal, one line
// rewritten in place as N changes and cleared when the wait ends; with -v,
// one line per change, terminal or not; with -q, nothing.
//
// While the line is shown, resh's stderr is guarded as for the progress
// line (lineProgress): whatever else is written there (a reconnection
// notice) erases the line first, and the line comes back after it once it
// ends its line.
type queueLine struct {
	r       *runner
	inPlace bool // stderr is a terminal, neither -v nor -q
	lines   bool // -v
	ahead   int  // the N shown last, -1 before the first

	// Under r.stderr.mu:
	orig  io.Writer // r.stderr.w before the guard; nil while not guarded
	shown bool      // the line is on the terminal
}

func (r *runner) queueLine(stderrTerm bool) *queueLine {
	return &queueLine{r: r, inPlace: stderrTerm && !r.o.Quiet && r.o.Verbosity == 0, lines: r.o.Verbosity > 0, ahead: -1}
}

// queueText is the waiting line for n sessions ahead.
func queueText(n int) string {
	return fmt.Sprintf("resh: waiting for a free executor (%d ahead)", n)
}

// show says that n sessions are ahead, if that changed.
func (q *queueLine) show(n int) {
	if n == q.ahead {
		return
	}
	q.ahead = n
	switch {
	case q.lines:
		q.r.stderr.printf("%s%s", queueText(n), q.r.eol())
	case q.inPlace:
		s := q.r.stderr
		s.mu.Lock()
		defer s.mu.Unlock()
		if q.orig == nil {
			q.orig = s.w
			s.w = queueGuard{q}
		}
		q.draw()
	}
}

// draw writes the line in place; r.stderr.mu is held.
func (q *queueLine) draw() {
	_, _ = io.WriteString(q.orig, "\r"+queueText(q.ahead)+"\x1b[K")
	q.shown = true
}

// clear erases the line, if shown, and removes the guard.
func (q *queueLine) clear() {
	s := q.r.stderr
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.orig == nil {
		return
	}
	if q.shown {
		_, _ = io.WriteString(q.orig, "\r\x1b[K")
		q.shown = false
	}
	s.w, q.orig = q.orig, nil
}

// queueGuard is resh's stderr while the waiting line is shown; its Write
// is called with r.stderr.mu held.
type queueGuard struct{ q *queueLine }

func (g queueGuard) Write(b []byte) (int, error) {
	q := g.q
	if len(b) == 0 {
		return q.orig.Write(b)
	}
	if q.shown {
		_, _ = io.WriteString(q.orig, "\r\x1b[K")
		q.shown = false
	}
	n, err := q.orig.Write(b)
	if b[len(b)-1] == '\n' {
		q.draw()
	}
	return n, err
}
