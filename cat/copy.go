package cat

import (
	"context"
	"fmt"
	"io"
)

// bufSize is the copy buffer: a yamux stream hands over at most its
// window (256 KiB) per read, a pipe at most its capacity (64 KiB).
const bufSize = 256 << 10

// WriteError is a failure to write lcat's standard output, which ends lcat.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write error: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Copy writes the data of a read transfer, from the client on r, to w: in
// lcat when reshd relays, in reshd when lcat passed it its stdout. It
// returns nil, a *WriteError, or an error for the user naming the file
// (the data broke off, or ended short of size bytes when size > 0).
// Cancelling ctx stops it between two writes.
func Copy(ctx context.Context, w io.Writer, r io.Reader, name string, size int64) error {
	buf := make([]byte, bufSize)
	var n int64
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("%s: %w", name, ctx.Err())
				}
				return &WriteError{werr}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", name, ctx.Err())
			}
			return fmt.Errorf("%s: transfer broken after %d bytes: %w", name, n, rerr)
		}
	}
	if size > 0 && n < size {
		return fmt.Errorf("%s: transfer cut short: got %d of %d bytes", name, n, size)
	}
	return nil
}
