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

	"resh/proto"
)

// Remote is lcat: it writes each of files, read from the client machine
// through the RESH_SOCKET socket, to stdout in order; "-" (or no files at
// all) copies stdin. A file that cannot be read is reported on stderr as
// "lcat: FILE: error" and the others still print. It returns the exit
// status: 0, or 1 if anything failed.
func Remote(ctx context.Context, socket string, files []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if socket == "" {
		_, _ = fmt.Fprintf(stderr, "lcat: %s\n", proto.NotInSession)
		return 1
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	status := 0
	for _, name := range files {
		var err error
		if name == "-" {
			_, err = io.Copy(stdout, stdin)
			if err != nil {
				err = fmt.Errorf("-: %w", err)
			}
		} else {
			err = readFile(ctx, socket, name, stdout)
		}
		if err == nil {
			continue
		}
		status = 1
		_, _ = fmt.Fprintf(stderr, "lcat: %v\n", err)
		var we *writeError
		if errors.Is(err, proto.ErrNoSession) || errors.As(err, &we) || ctx.Err() != nil {
			break
		}
	}
	return status
}

// writeError is a failure to write stdout, which ends lcat.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write error: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// readFile copies one client file to stdout.
func readFile(ctx context.Context, socket, name string, stdout io.Writer) error {
	c, reply, err := proto.OpenTransfer(ctx, socket, proto.TransferOpen{Op: proto.OpRead, Path: name, Tool: "lcat"})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	w := &errWriter{w: stdout}
	n, err := io.Copy(w, c)
	if w.err != nil {
		return &writeError{w.err}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: transfer broken after %d bytes: %w", name, n, err)
	}
	if reply.Size > 0 && n < reply.Size {
		return fmt.Errorf("%s: transfer cut short: got %d of %d bytes", name, n, reply.Size)
	}
	return nil
}
