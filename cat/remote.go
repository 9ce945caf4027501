// Package cat is lcat, cat for files on the resh client's machine, in two
// halves (proto/spec.md §3): Remote runs inside a resh session and asks for
// files through the session's RESH_SOCKET; ServeRead runs in the client and
// serves them.
package cat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"resh/internal/sigpipe"
	"resh/proto"
)

// Remote is lcat: it writes each of files, read from the client machine
// through the RESH_SOCKET socket, to stdout in order; "-" (or no files at
// all) copies stdin. A file that cannot be read is reported on stderr as
// "lcat: FILE: error" and the others still print. It returns the exit
// status: 0, or 1 if anything failed.
//
// When stdout is an *os.File, lcat hands it to reshd, which writes the
// file's data to it directly (proto/spec.md §3.3); if reshd declines, the
// data comes through the socket and lcat copies it.
func Remote(ctx context.Context, socket string, files []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if socket == "" {
		_, _ = fmt.Fprintf(stderr, "lcat: %s\n", proto.NotInSession)
		return 1
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	out, pass := stdout.(*os.File)
	status := 0
	for _, name := range files {
		var err error
		switch {
		case name == "-":
			_, err = io.Copy(stdout, stdin)
			if err != nil {
				err = fmt.Errorf("-: %w", err)
			}
		case pass:
			err = passFile(ctx, socket, name, out)
			if errors.Is(err, proto.ErrNoPass) {
				pass = false
				err = readFile(ctx, socket, name, stdout)
			}
		default:
			err = readFile(ctx, socket, name, stdout)
		}
		if err == nil {
			continue
		}
		status = 1
		_, _ = fmt.Fprintf(stderr, "lcat: %v\n", err)
		var we *WriteError
		var oe *outputError
		if errors.Is(err, proto.ErrNoSession) || errors.As(err, &we) || errors.As(err, &oe) || ctx.Err() != nil {
			break
		}
	}
	return status
}

// readFile copies one client file, relayed by reshd, to stdout.
func readFile(ctx context.Context, socket, name string, stdout io.Writer) error {
	c, reply, err := proto.OpenTransfer(ctx, socket, proto.TransferOpen{Op: proto.OpRead, Path: name, Tool: "lcat"})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	return Copy(ctx, stdout, c, name, reply.Size)
}

// passFile has reshd write one client file to out (proto/spec.md §3.3). It
// returns proto.ErrNoPass when reshd declines.
func passFile(ctx context.Context, socket, name string, out *os.File) error {
	pass := proto.TransferPass{Op: proto.OpRead, Paths: []string{name}, Tool: "lcat", SIGPIPE: sigpipe.Wanted(out)}
	c, reply, err := proto.PassTransfer(ctx, socket, pass, out)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if !reply.OK {
		return errors.New(proto.WithPath(name, reply.Error))
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	var done proto.TransferDone
	if err := proto.Expect(c, proto.TypeTransferDone, &done); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %s", name, proto.DescribeDone(err))
	}
	if done.SIGPIPE {
		sigpipe.Die()
	}
	if len(done.Errors) == 0 {
		return nil
	}
	if done.Stdout {
		return &outputError{done.Errors[0]}
	}
	return errors.New(done.Errors[0])
}

// outputError is reshd's report of a failure to write lcat's stdout,
// which ends lcat as a WriteError does.
type outputError struct{ msg string }

func (e *outputError) Error() string { return e.msg }
