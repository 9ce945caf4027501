package reshjobcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"resh/client"
	"resh/proto"
)

// run is reshjob HOST run: the job submitted and attached to in one
// session (QueryRun), followed to its end as attach follows it.
func run(ctx context.Context, o *Options, env client.Env) (int, error) {
	job, src, in, err := newJob(&o.Run, env.Stdin)
	if err != nil {
		return 0, err
	}
	// Caught from the start: a signal while reshjob connects ends it; one
	// while the job is being submitted is sent on once it is stored (its
	// id known), which cancels it.
	sigs, stopCatching := catchSignals(env)
	defer stopCatching()
	f := newFollower(o, env, sigs, Offsets{}, o.Run.JSON)

	s, err := open(ctx, &o.Client, f.env, sigs)
	if err != nil {
		return 0, err
	}
	sent, err := sendQuery(s, proto.Hello{Query: proto.QueryRun, Job: job}, src, in)
	if err != nil {
		s.Close()
		return 0, err
	}
	var sub proto.Submitted
	if err := answer(s, o, sent, answerTimeout(env), proto.TypeSubmitted, &sub); err != nil {
		s.Close()
		if errors.As(err, new(unanswered)) {
			err = fmt.Errorf("%w; the job may have been stored: see reshjob %s ls", err, o.Client.Host)
		}
		return 0, err
	}
	f.setID(sub.ID)
	if o.Verbose {
		fmt.Fprintf(s.ErrOutput(), "reshjob: job %d submitted\n", sub.ID)
	}
	return f.follow(ctx, s)
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

// InterruptGrace bounds the wait for the job's end once a signal was sent
// on (which cancels the job): then reshjob leaves without it.
const InterruptGrace = 3 * time.Second

// forwarded reports whether sig is one reshjob sends on (INT, TERM, HUP,
// QUIT), as resh does to a command: the server cancels the job, whose
// verdict and status then say so. Others are ignored.
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
