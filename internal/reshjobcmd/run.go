package reshjobcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"resh/client"
	"resh/proto"
)

// run submits the program of o.Run and returns reshjob's exit status, or
// an error for a failure of reshjob's own (exit 255, printed by Run).
// olderServer is the command a reshd that predates jobs runs in place of
// the program.
const olderServer = "echo 'reshd: this server cannot run submitted programs (it predates reshjob)' >&2; exit 125"

func run(ctx context.Context, o *Options, env client.Env) (int, error) {
	r := &o.Run
	src, err := readSource(r, env.Stdin)
	if err != nil {
		return 0, err
	}
	name := ""
	if !r.Stdin() {
		name = filepath.Base(r.File)
	}
	// Caught from the start: a signal while reshjob connects or while
	// the program is queued ends reshjob (the end of the session takes
	// the program out of the queue); one that comes between is sent on
	// once the program runs.
	sigs, stopCatching := catchSignals(env)
	defer stopCatching()

	s, err := open(ctx, &o.Client, env, sigs)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	job := &proto.Job{Lang: r.Lang, Name: name, Size: int64(len(src)), Args: r.Args, Limits: r.Limits}
	// A reshd that predates jobs ignores Job and would run the login shell
	// with the source as its input: it runs this command instead, which
	// reads nothing and says why (proto/spec.md §7).
	if err := s.Send(proto.TypeHello, proto.Hello{Version: proto.Version, Job: job, Command: olderServer}); err != nil {
		return 0, s.Lost(err)
	}
	// The source goes at once, before Started: the server reads it
	// first. With "-" the program's own stdin is empty.
	var stdin io.Reader = env.Stdin
	if r.Stdin() {
		stdin = nil
	}
	go sendStdin(s.Stdin, src, stdin)

	if _, err := s.AwaitStart(sigs); err != nil {
		return 0, err
	}
	outs := copyOutputs(s, env.Stdout)
	// Whatever the end, the output that came is copied out (the closed
	// session's streams give what they hold, then EOF) before reshjob
	// says more.
	defer func() {
		s.Close()
		<-outs.done
	}()
	ended := make(chan ending, 1)
	go func() { ended <- readEnd(s.Control) }()

	var end ending
	var grace <-chan time.Time // runs from the first signal forwarded
	var first syscall.Signal
	for waiting := true; waiting; {
		select {
		case end = <-ended:
			waiting = false
		case sig := <-sigs:
			n, ok := forwarded(sig)
			if !ok {
				continue
			}
			if first != 0 {
				return cancelled(s, first), nil
			}
			first = n
			_ = s.Send(proto.TypeSignal, proto.Signal{Name: strings.TrimPrefix(unix.SignalName(n), "SIG")})
			t := time.NewTimer(InterruptGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			return cancelled(s, first), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	switch {
	case end.gone != nil && end.gone.Message != "":
		return 0, errors.New(end.gone.Message)
	case end.gone != nil:
		return 0, errors.New("the executor running the program was lost")
	case errors.Is(end.err, io.EOF):
		return 0, s.Lost(errors.New("the server closed the session before the program ended"))
	case end.err != nil:
		var remote *proto.RemoteError
		if errors.As(end.err, &remote) {
			return 0, end.err
		}
		return 0, s.Lost(end.err)
	case end.verdict == nil:
		return 0, errors.New("the server sent no verdict: it ran no program (is it a reshd older than reshjob?)")
	}
	// The output before Exit is in the streams: copy it out before the
	// verdict is told.
	select {
	case <-outs.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if outs.broken {
		return client.ExitPipe, nil
	}
	if outs.stderr.unterminated() {
		// The verdict line goes on a line of its own.
		_, _ = io.WriteString(s.ErrOutput(), "\n")
	}
	return report(r, *end.verdict, end.exit, env.Stdout, s.ErrOutput())
}

// open opens the session as client.Open does; a signal reshjob forwards
// (INT, TERM, HUP, QUIT) ends the wait for the connection.
func open(ctx context.Context, o *client.Options, env client.Env, sigs <-chan os.Signal) (*client.Session, error) {
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case sig := <-sigs:
				if _, ok := forwarded(sig); ok {
					cancel(interruptError{sig})
					return
				}
			case <-done:
				return
			}
		}
	}()
	s, err := client.Open(dctx, o, env, "reshjob")
	close(done)
	<-watched
	if cause := context.Cause(dctx); errors.As(cause, new(interruptError)) {
		if err == nil {
			s.Close() // connected as the signal came
		}
		return nil, cause
	}
	return s, err
}

// interruptError ends reshjob while it connects.
type interruptError struct{ sig os.Signal }

func (e interruptError) Error() string { return fmt.Sprintf("%v while connecting", e.sig) }

// sendStdin writes the program's source, then the program's stdin (none
// when stdin is nil), to the stdin stream, and half-closes it at stdin's
// end so that the program reads EOF. A failed write means the session is
// over: whoever reads the control stream reports why.
func sendStdin(w io.WriteCloser, src []byte, stdin io.Reader) {
	if _, err := w.Write(src); err != nil {
		return
	}
	if stdin != nil {
		if _, err := io.Copy(w, stdin); err != nil {
			return
		}
	}
	_ = w.Close()
}

// outputs tells how the copies of the program's stdout and stderr went.
type outputs struct {
	done   chan struct{} // closed when both have ended
	broken bool          // a local reader went away; read after done
	stderr lastByte      // where the program's stderr goes
}

// lastByte passes writes to w, remembering the last byte written.
type lastByte struct {
	w    io.Writer
	mu   sync.Mutex
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.mu.Lock()
		l.last = p[n-1]
		l.mu.Unlock()
	}
	return n, err
}

// unterminated reports that something was written and its last line has
// no newline.
func (l *lastByte) unterminated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last != 0 && l.last != '\n'
}

// copyOutputs copies the program's stdout to stdout and its stderr to
// reshjob's, each until its end. When a local reader goes away (EPIPE),
// the server is told, so that the program's writes there fail too, and
// the rest is drained.
func copyOutputs(s *client.Session, stdout io.Writer) *outputs {
	o := &outputs{done: make(chan struct{}), stderr: lastByte{w: s.ErrOutput()}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range []struct {
		w    io.Writer
		r    io.Reader
		kind string
	}{{stdout, s.Stdout, proto.KindStdout}, {&o.stderr, s.Stderr, proto.KindStderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(c.w, c.r)
			if err == nil {
				return
			}
			if errors.Is(err, syscall.EPIPE) {
				_ = s.Send(proto.TypeOutputClosed, proto.OutputClosed{Stream: c.kind})
				mu.Lock()
				o.broken = true
				mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, c.r)
		}()
	}
	go func() {
		wg.Wait()
		close(o.done)
	}()
	return o
}

// ending is how the control stream ended: Verdict then Exit, Gone, or an
// error (an Error message is a *proto.RemoteError).
type ending struct {
	verdict *proto.Verdict
	exit    proto.Exit
	gone    *proto.Gone
	err     error
}

// readEnd reads the control stream after Started until Exit or Gone,
// keeping the Verdict that comes before Exit.
func readEnd(control io.Reader) ending {
	var end ending
	for {
		t, body, err := proto.ReadMessage(control)
		if err != nil {
			end.err = err
			return end
		}
		var v any
		switch t {
		case proto.TypeVerdict:
			end.verdict = &proto.Verdict{}
			v = end.verdict
		case proto.TypeExit:
			v = &end.exit
		case proto.TypeGone:
			end.gone = &proto.Gone{}
			v = end.gone
		case proto.TypeError:
			var e proto.Error
			if err := proto.Decode(body, &e); err != nil {
				end.err = fmt.Errorf("protocol error: %w", err)
			} else {
				end.err = &proto.RemoteError{Message: e.Message}
			}
			return end
		default:
			continue
		}
		if err := proto.Decode(body, v); err != nil {
			end.err = fmt.Errorf("protocol error: %w", err)
			return end
		}
		if t != proto.TypeVerdict {
			return end
		}
	}
}

// catchSignals returns the signals reshjob receives (Env's in tests) and
// what stops catching them. SIGPIPE is caught so that a write to a broken
// stdout fails with EPIPE instead of killing reshjob.
func catchSignals(env client.Env) (<-chan os.Signal, func()) {
	if env.Signals != nil {
		return env.Signals, func() {}
	}
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	return ch, func() { signal.Stop(ch) }
}

// InterruptGrace bounds the wait for the program's end once a signal was
// sent on to it: then reshjob cancels the job itself.
const InterruptGrace = 3 * time.Second

// forwarded reports whether sig is one reshjob sends on to the program
// (INT, TERM, HUP, QUIT), as resh does to a command: the server kills the
// program, whose verdict and status then say so. Others are ignored.
func forwarded(sig os.Signal) (syscall.Signal, bool) {
	n, ok := sig.(syscall.Signal)
	switch {
	case !ok:
		return 0, false
	case n == syscall.SIGINT, n == syscall.SIGTERM, n == syscall.SIGHUP, n == syscall.SIGQUIT:
		return n, true
	}
	return 0, false
}

// cancelled ends reshjob without waiting for the program any more (a
// second signal, or the first's grace over): the end of the session
// cancels the job. It returns 128+N for the first signal N.
func cancelled(s *client.Session, first syscall.Signal) int {
	fmt.Fprintf(s.ErrOutput(), "reshjob: %s: the job is cancelled\n", unix.SignalName(first))
	return 128 + int(first)
}
