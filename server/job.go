package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	jobs "resh/job"
	"resh/proto"
	"resh/sandbox"
)

// errHangup ends a program whose session is hung up (the server shuts
// down).
var errHangup = errors.New("reshd is shutting down")

// signalCause ends a program the client sent a Signal to.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return "signal " + s.sig.String() }

// serveJob runs the program that a Hello with Job submits (proto/spec.md
// §7) in place of a command: the language checked, the source read from
// the start of stdin, Started, then jobs.Run with the rest of stdin and the
// outputs, and Verdict and Exit once the outputs are closed. A Signal
// from the client kills the program (RUNTIME_ERROR with that signal); the
// session's end or the server's shutdown kill it too.
func (ss *session) serveJob(mux Mux, st *streams, h proto.Hello) {
	j := h.Job
	ss.log = ss.log.With("lang", j.Lang, "program", j.Name)
	cfg := &ss.srv.cfg
	l, ok := cfg.Languages.ByName(j.Lang)
	if !ok || !l.ToolsIn(sandbox.DefaultPath) {
		ss.refuse(mux, fmt.Sprintf("reshd: no language %s here (have: %s)", j.Lang, strings.Join(cfg.Languages.NamesIn(sandbox.DefaultPath), ", ")))
		return
	}
	if j.Size < 0 || j.Size > jobs.MaxSource {
		ss.refuse(mux, fmt.Sprintf("reshd: the program is %d bytes, more than the %d a program may be", j.Size, jobs.MaxSource))
		return
	}
	in := st.takeStdin()
	defer func() { _ = in.Close() }()
	src := make([]byte, j.Size)
	if n, err := io.ReadFull(in, src); err != nil {
		ss.refuse(mux, fmt.Sprintf("reshd: the program's source ended after %d of %d bytes", n, j.Size))
		return
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ss.mu.Lock()
	if ss.hupped {
		ss.mu.Unlock()
		ss.refuse(mux, "reshd: the server is shutting down")
		return
	}
	ss.cancelJob = cancel
	ss.mu.Unlock()
	ss.log.Info("reshd: program started")
	ss.writeControl(proto.TypeStarted, proto.Started{})

	controlDone := make(chan struct{})
	go func() {
		defer close(controlDone)
		ss.jobControl(cancel)
	}()
	go func() {
		select {
		case <-mux.CloseChan():
			cancel(errors.New("the session ended"))
		case <-ctx.Done():
		}
	}()

	v := jobs.Run(ctx, jobs.Spec{
		Language: l,
		Source:   src,
		Args:     j.Args,
		Limits:   j.Limits,
		Ceiling:  cfg.JobCeiling,
		Stdin:    in,
		Stdout:   st.stdout,
		Stderr:   st.stderr,
		Unsafe:   cfg.UnsafeNoSandbox,
		Executor: cfg.ExecutorName,
		Pool:     cfg.JobPool,
	})
	var sc signalCause
	switch cause := context.Cause(ctx); {
	case errors.As(cause, &sc):
		v.Verdict, v.Status, v.Signal = proto.VerdictRuntimeError, -1, int(sc.sig)
		v.Detail = fmt.Sprintf("killed by the client's signal %s", sc.sig)
	case cause != nil:
		v.Detail = "killed: " + cause.Error()
	}
	// The copy of stdin to the program may wait in a Read: wake it.
	_ = in.SetReadDeadline(time.Unix(1, 0))
	_ = st.stdout.Close()
	_ = st.stderr.Close()
	exit := jobs.ExitOf(v)
	ss.log.Info("reshd: program ended", "verdict", v.Verdict, "detail", v.Detail, "code", exit.Code, "signal", exit.Signal, "duration", time.Since(ss.start).Round(time.Millisecond))
	ss.writeControl(proto.TypeVerdict, v)
	ss.writeControl(proto.TypeExit, exit)
	_ = ss.control.SetReadDeadline(time.Unix(1, 0))
	<-controlDone
	_ = st.control.Close()
	ss.awaitClientClose(mux)
}

// jobControl serves the control stream while a program runs: a Signal
// kills it. It returns when the stream ends or its read deadline passes.
func (ss *session) jobControl(cancel context.CancelCauseFunc) {
	ss.eachSignal(func(name string, sig syscall.Signal) {
		ss.log.Info("reshd: the client killed the program", "signal", name)
		cancel(signalCause{sig})
	})
}

// eachSignal reads the control stream until it ends or its read deadline
// passes, and calls do for each Signal of a known name; an unknown one is
// answered with an Error (as for a command), other messages are ignored.
func (ss *session) eachSignal(do func(name string, sig syscall.Signal)) {
	cr := &controlReader{r: ss.control}
	for {
		t, body, err := cr.next()
		if err != nil {
			return
		}
		var s proto.Signal
		if t != proto.TypeSignal || proto.Decode(body, &s) != nil {
			continue
		}
		sig, ok := signals[s.Name]
		if !ok {
			ss.writeControl(proto.TypeError, proto.Error{Message: fmt.Sprintf("reshd: unknown signal %q", s.Name)})
			continue
		}
		do(s.Name, sig)
	}
}
