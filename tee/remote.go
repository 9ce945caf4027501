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
	"os"
	"sync"

	"resh/internal/sigpipe"
	"resh/proto"
)

// Remote is ltee: it copies stdin to stdout and to each of files on the
// client machine, reached through the RESH_SOCKET socket (appending with
// appendMode). A file the client refuses, or whose writing fails, is
// reported on stderr ("ltee: FILE: error") and dropped; the others go on.
// It returns the exit status: 0, or 1 if anything failed.
//
// When stdin and stdout are *os.File, ltee hands them to reshd, which does
// the copy itself (proto/spec.md §3.3); if reshd declines, ltee copies, and
// the data for the files goes through the socket.
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

	in, inFile := stdin.(*os.File)
	out, outFile := stdout.(*os.File)
	if len(files) > 0 && inFile && outFile {
		msgs, err := pass(ctx, socket, files, op, in, out, func(msg string) { report("%s", msg) })
		if !errors.Is(err, proto.ErrNoPass) {
			if err != nil {
				report("%v", err)
			}
			for _, m := range msgs {
				report("%s", m)
			}
			return status
		}
	}

	// Open every transfer at once, then report refusals in order.
	// Chunks are offered, so that a client can tell this ltee killed from
	// one that finished (spec.md §3.4).
	conns := make([]*net.UnixConn, len(files))
	chunked := make([]bool, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, name := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reply proto.TransferReply
			conns[i], reply, errs[i] = proto.OpenTransfer(ctx, socket, proto.TransferOpen{Op: op, Path: name, Tool: "ltee", Chunks: true})
			chunked[i] = reply.Chunks
		}()
	}
	wg.Wait()
	var sinks []*Sink
	for i, err := range errs {
		if err != nil {
			report("%v", err)
			if errors.Is(err, proto.ErrNoSession) {
				closeConns(conns)
				return 1
			}
			continue
		}
		sinks = append(sinks, NewSink(files[i], conns[i], chunked[i]))
	}
	stop := context.AfterFunc(ctx, func() { closeConns(conns) })
	defer stop()
	msgs, _ := Copy(ctx, stdin, stdout, sinks, nil)
	for _, m := range msgs {
		report("%s", m)
	}
	return status
}

// pass has reshd do the whole copy (proto/spec.md §3.3): it reports the
// client's refusals as they come, then returns reshd's messages. It
// returns proto.ErrNoPass when reshd declines; it dies of SIGPIPE when
// reshd says a broken pipe on stdout killed ltee.
func pass(ctx context.Context, socket string, files []string, op string, in, out *os.File, refused func(string)) ([]string, error) {
	p := proto.TransferPass{Op: op, Paths: files, Tool: "ltee", SIGPIPE: sigpipe.Wanted(out)}
	c, reply, err := proto.PassTransfer(ctx, socket, p, in, out)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	for i, name := range files {
		if i > 0 {
			if err := proto.Expect(c, proto.TypeTransferReply, &reply); err != nil {
				return nil, broken(ctx, files[i:], err)
			}
		}
		if !reply.OK {
			refused(proto.WithPath(name, reply.Error))
		}
	}
	var done proto.TransferDone
	if err := proto.Expect(c, proto.TypeTransferDone, &done); err != nil {
		return nil, broken(ctx, nil, err)
	}
	if done.SIGPIPE {
		sigpipe.Die()
	}
	return done.Errors, nil
}

// broken is the error of a passed transfer whose connection to reshd broke
// before TransferDone.
func broken(ctx context.Context, unanswered []string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(unanswered) > 0 {
		return fmt.Errorf("%s: %s", unanswered[0], proto.Describe(err))
	}
	return errors.New(proto.DescribeDone(err))
}

func closeConns(conns []*net.UnixConn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
