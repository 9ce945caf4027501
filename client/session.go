package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// openStreams opens the session's four streams, each announced by its Open.
func (r *runner) openStreams(sess *yamux.Session) (*streams, error) {
	var opened [4]*yamux.Stream
	for i, kind := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		st, err := sess.OpenStream()
		if err == nil {
			err = proto.WriteMessage(st, proto.TypeOpen, proto.Open{Kind: kind})
		}
		if err != nil {
			return nil, r.lost(fmt.Errorf("open %s stream: %w", kind, err))
		}
		opened[i] = st
	}
	r.debugf(2, "streams open")
	return &streams{control: opened[0], stdin: opened[1], stdout: opened[2], stderr: opened[3]}, nil
}

// startCommand sends Hello on control and waits for Started (awaitStart,
// which also follows a master's queue).
func (r *runner) startCommand(control *yamux.Stream, sigs <-chan os.Signal, tty bool, stdinFD int, stdinTerm, stderrTerm bool) error {
	hello := proto.Hello{Version: proto.Version, Command: r.o.Command, TTY: tty, Env: sentEnv(r.env.Environ), User: r.o.User, On: r.o.On}
	hello.Term = hello.Env["TERM"]
	if tty {
		hello.Rows, hello.Cols = r.size(stdinFD, stdinTerm)
	}
	sent := time.Now()
	if err := r.send(proto.TypeHello, hello); err != nil {
		return r.lost(err)
	}
	r.debugf(2, "asked for command %q (pseudo-terminal: %v, user: %q, executor: %q)", hello.Command, tty, hello.User, hello.On)
	started, err := r.awaitStart(control, sigs, tty, stdinFD, stdinTerm, stderrTerm)
	if err != nil {
		return err
	}
	r.debugf(1, "command started in %v (remote pid %d)", since(sent), started.PID)
	return nil
}

// startError explains a failed read of the answer to Hello, which was
// awaited for timeout: before what ("the command started").
func (r *runner) startError(err error, timeout time.Duration, what string) error {
	late := errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, yamux.ErrTimeout)
	switch {
	case errors.Is(err, io.EOF):
		return r.lost(fmt.Errorf("the server closed the session before %s", what))
	case late && !r.connected.Load():
		return r.lost(fmt.Errorf("connection lost before %s", what))
	case late:
		return fmt.Errorf("no answer from %s within %v", r.o.Addr(), timeout)
	}
	return fmt.Errorf("protocol error: %w", err)
}

// send writes one message on the control stream.
func (r *runner) send(t proto.Type, v any) error {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	return proto.WriteMessage(r.control, t, v)
}

// sentEnv picks the variables the protocol carries: TERM, LANG and LC_*.
func sentEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (k == "TERM" || k == "LANG" || strings.HasPrefix(k, "LC_")) {
			env[k] = v
		}
	}
	return env
}
