// Package tee is ltee, tee for files on the resh client's machine, in two
// halves (proto/spec.md §3): Remote runs inside a resh session and writes
// through the session's RESH_SOCKET; ServeWrite runs in the client and
// writes the files.
package tee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"resh/proto"
)

// sink is one client file being written.
type sink struct {
	name     string
	conn     *net.UnixConn
	werr     error       // the first error writing to conn; the sink is dropped
	closed   atomic.Bool // we half-closed: a result now is the normal end
	done     chan struct{}
	result   proto.TransferResult
	resErr   error // reading the result failed
	resEarly bool  // the result came before our half-close
}

// Remote is ltee: it copies stdin to stdout and to each of files on the
// client machine, reached through the RESH_SOCKET socket (appending with
// appendMode). A file the client refuses, or whose writing fails, is
// reported on stderr ("ltee: FILE: error") and dropped; the others go on.
// It returns the exit status: 0, or 1 if anything failed.
func Remote(ctx context.Context, socket string, files []string, appendMode bool, stdin io.Reader, stdout, stderr io.Writer) int {
	if socket == "" {
		_, _ = fmt.Fprintf(stderr, "ltee: %s\n", proto.NotInSession)
		return 1
	}
	op := proto.OpWrite
	if appendMode {
		op = proto.OpAppend
	}
	status := 0
	report := func(format string, args ...any) {
		status = 1
		_, _ = fmt.Fprintf(stderr, "ltee: "+format+"\n", args...)
	}

	// Open every transfer at once, then report refusals in order.
	sinks := make([]*sink, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, name := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sinks[i], errs[i] = open(ctx, socket, name, op)
		}()
	}
	wg.Wait()
	var live []*sink
	for i, err := range errs {
		if err != nil {
			report("%v", err)
			if errors.Is(err, proto.ErrNoSession) {
				closeSinks(sinks)
				return 1
			}
			continue
		}
		live = append(live, sinks[i])
	}
	stop := context.AfterFunc(ctx, func() { closeSinks(live) })
	defer stop()
	for _, s := range live {
		go s.readResult()
	}

	// Copy.
	stdoutOK := true
	buf := make([]byte, 64<<10)
	for {
		n, rerr := stdin.Read(buf)
		if n > 0 {
			if stdoutOK {
				if _, err := stdout.Write(buf[:n]); err != nil {
					report("standard output: %v", err)
					stdoutOK = false
				}
			}
			for _, s := range live {
				if s.werr == nil {
					if _, err := s.conn.Write(buf[:n]); err != nil {
						s.werr = err
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			report("standard input: %v", rerr)
			break
		}
	}

	// Finish every transfer and collect its result.
	for _, s := range live {
		if s.werr == nil {
			s.closed.Store(true)
			if err := s.conn.CloseWrite(); err != nil {
				s.werr = err
			}
		}
	}
	for _, s := range live {
		<-s.done
		_ = s.conn.Close()
		switch {
		case ctx.Err() != nil && (s.resErr != nil || s.werr != nil):
			report("%s: %v", s.name, ctx.Err())
		case s.resErr != nil:
			report("%s: %s", s.name, proto.Describe(s.resErr))
		case !s.result.OK:
			report("%s", proto.WithPath(s.name, s.result.Error))
		case s.resEarly:
			report("%s: the client ended the transfer early", s.name)
		case s.werr != nil:
			report("%s: write: %v", s.name, s.werr)
		}
	}
	return status
}

// open starts one transfer and reads the client's reply.
func open(ctx context.Context, socket, name, op string) (*sink, error) {
	c, _, err := proto.OpenTransfer(ctx, socket, proto.TransferOpen{Op: op, Path: name, Tool: "ltee"})
	if err != nil {
		return nil, err
	}
	return &sink{name: name, conn: c, done: make(chan struct{})}, nil
}

// readResult waits for the TransferResult. One that comes before our
// half-close means the client gave up: closing the connection then keeps
// the copy from blocking on it.
func (s *sink) readResult() {
	defer close(s.done)
	s.resErr = proto.Expect(s.conn, proto.TypeTransferResult, &s.result)
	if !s.closed.Load() {
		s.resEarly = s.resErr == nil
		_ = s.conn.Close()
	}
}

func closeSinks(sinks []*sink) {
	for _, s := range sinks {
		if s != nil {
			_ = s.conn.Close()
		}
	}
}
