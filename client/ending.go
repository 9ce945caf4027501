package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/auth"
	"resh/connection"
	"resh/proto"
)

// ending is how the session ended on the control stream: Exit, Gone (the
// master lost the executor running the command), or an error.
type ending struct {
	exit proto.Exit
	gone *proto.Gone
	err  error
}

// readExit reads the control stream until Exit (waited for by wg) and
// delivers it, or the error that ended the stream, on the returned channel.
func (r *runner) readExit(control io.Reader, wg *sync.WaitGroup) <-chan ending {
	ended := make(chan ending, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.guard()
		ended <- readExit(control)
	}()
	return ended
}

// readExit reads messages from control until Exit or Gone, skipping
// others.
func readExit(control io.Reader) ending {
	for {
		t, body, err := proto.ReadMessage(control)
		if err != nil {
			return ending{err: err}
		}
		switch t {
		case proto.TypeExit:
			var e proto.Exit
			if err := proto.Decode(body, &e); err != nil {
				return ending{err: fmt.Errorf("protocol error: %w", err)}
			}
			return ending{exit: e}
		case proto.TypeGone:
			var g proto.Gone
			if err := proto.Decode(body, &g); err != nil {
				return ending{err: fmt.Errorf("protocol error: %w", err)}
			}
			return ending{gone: &g}
		}
	}
}

// goneError is resh's error when the master lost the executor that ran the
// command: its message ("executor NAME lost").
func goneError(g *proto.Gone) error {
	if g.Message == "" {
		return errors.New("the executor running the command was lost")
	}
	return errors.New(g.Message)
}

// wait waits for the end of the session and returns resh's exit status:
// the command's once it exited and its output was copied, ExitPipe when a
// local reader went away, or an error for an escape, a signal while the
// connection is lost, a lost session.
func (r *runner) wait(ctx context.Context, ended <-chan ending, p *pumps, interrupted <-chan os.Signal, transfers *transfers) (int, error) {
	var end ending
	select {
	case end = <-ended:
	case <-p.broken:
		// Told: give the command a moment to end of its write.
		t := time.NewTimer(pipeGrace)
		defer t.Stop()
		select {
		case <-ended:
		case <-t.C:
		case <-p.escaped:
		case <-ctx.Done():
		}
		return ExitPipe, nil
	case <-p.escaped:
		return 0, errors.New("connection closed by escape")
	case s := <-interrupted:
		return 0, fmt.Errorf("%v while the connection was lost", s)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if end.gone != nil {
		// The output that came before Gone is in the streams' buffers:
		// run's end copies it out before the message is printed.
		return 0, goneError(end.gone)
	}
	if end.err != nil {
		if errors.Is(end.err, proto.ErrTooLong) || strings.HasPrefix(end.err.Error(), "protocol error") {
			return 0, end.err
		}
		if errors.Is(end.err, io.EOF) {
			return 0, r.lost(errors.New("the server closed the session"))
		}
		return 0, r.lost(end.err)
	}
	r.debugf(2, "command exited: code %d, signal %d", end.exit.Code, end.exit.Signal)
	for range 2 {
		select {
		case <-p.outDone:
		case <-p.escaped:
			return 0, errors.New("connection closed by escape")
		}
	}
	select {
	case <-p.broken:
		return ExitPipe, nil
	default:
	}
	// Transfers that ended with the command report their end on their
	// own streams, maybe after Exit: give them a moment to be told.
	transfers.wait(TransferGrace, p.escaped)
	return exitStatus(end.exit), nil
}

// exitStatus is resh's exit status for the command's end.
func exitStatus(e proto.Exit) int {
	if e.Signal > 0 {
		return 128 + e.Signal
	}
	if e.Code < 0 || e.Code > 255 {
		return ExitFailure
	}
	return e.Code
}

// CloseGrace bounds how long resh waits, as it leaves, for the server to
// acknowledge the end of the session (and whatever was sent before it).
const CloseGrace = 3 * time.Second

// closeSession ends the session as resh leaves: a drained close, so that
// the server learns at once that resh is gone, while the connection is up;
// abandoned at once if the connection is lost (the user is leaving: it is
// not worth waiting for the network), or after CloseGrace.
func (r *runner) closeSession(sess *yamux.Session, conn net.Conn) {
	abort := func() {}
	if a, ok := conn.(interface{ Abort() }); ok {
		abort = a.Abort
	}
	if !r.connected.Load() {
		r.debugf(1, "connection lost: session abandoned")
		abort()
	}
	closed := make(chan struct{})
	go func() {
		_ = sess.Close()
		close(closed)
	}()
	t := time.NewTimer(CloseGrace)
	defer t.Stop()
	start := time.Now()
	select {
	case <-closed:
		r.debugf(1, "session closed in %v", since(start))
	case <-t.C:
		abort()
		<-closed
		r.debugf(1, "session abandoned after %v", since(start))
	}
}

// TransferGrace bounds how long resh waits, once the command has exited and
// its output has ended, for lcat and ltee transfers still open to finish.
const TransferGrace = 2 * time.Second

// lost explains a session that ended early, with the connection's own
// error when it has one.
func (r *runner) lost(err error) error {
	cause := r.lastErr.Err()
	if cause == nil && r.muxDone != nil {
		// A write can fail on a session the peer closed before our
		// reader got to the reason it sent (a TLS alert refusing our
		// key): let the reader reach it.
		t := time.NewTimer(time.Second)
		select {
		case <-r.muxDone:
		case <-t.C:
		}
		t.Stop()
		cause = r.lastErr.Err()
	}
	if refused := auth.Refusal(cause, r.identity); r.identity != nil && refused != nil {
		// TLS 1.3: the server's refusal of our key comes after our side
		// of the handshake, on the first read.
		return refused
	}
	if errors.Is(cause, auth.ErrTampered) {
		return tampered("session ended", cause)
	}
	if errors.Is(cause, connection.ErrServerGone) {
		return r.goneError()
	}
	if cause != nil && !errors.Is(cause, io.EOF) {
		return fmt.Errorf("session lost: %w", cause)
	}
	return fmt.Errorf("session lost: %w", err)
}
