package cat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"resh/access"
	"resh/proto"
)

// Meter follows one transfer for the user; ServeRead and tee.ServeWrite
// take one (nil for none).
type Meter interface {
	// Opened says that the file is open; size is its size, -1 if it is not
	// a regular file.
	Opened(size int64)
	// Update reports the bytes transferred so far.
	Update(n int64)
}

// StoppedError is ServeRead's error when reshd ended the transfer before
// the file's end: lcat, or the reader of its output, is gone (spec.md
// §3.1). The client stopped reading the file at once.
type StoppedError struct {
	Path string
	Sent int64 // bytes sent before the stop
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("lcat: %s: stopped after %d bytes: the reader went away", e.Path, e.Sent)
}

// ServeRead is the client's half of lcat: it serves the file named by open
// (an OpRead) on stream, which the remote lcat reads. It replies with a
// TransferReply (a refusal carries the message for the user), then sends
// the file's bytes and closes stream (a half-close on a yamux stream).
//
// reshd sends nothing on a read's stream after its TransferOpen: its end of
// the stream, the stream's failure or ctx's end stop the transfer at once,
// and ServeRead returns a *StoppedError.
func ServeRead(ctx context.Context, stream io.ReadWriteCloser, open proto.TransferOpen, dirs *access.Dirs, m Meter) error {
	defer stream.Close()
	if open.Op != proto.OpRead {
		msg := fmt.Sprintf("lcat: unsupported operation %q", open.Op)
		_ = proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return errors.New(msg)
	}
	f, err := dirs.Open(open.Path)
	if err != nil {
		return refuse(stream, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return refuse(stream, &access.Error{Path: open.Path, Err: err})
	}
	if st.IsDir() {
		return refuse(stream, fmt.Errorf("%s is a directory", open.Path))
	}
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	if m != nil {
		m.Opened(size)
	}
	if err := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: size}); err != nil {
		return fmt.Errorf("lcat %s: cannot answer reshd: %w", open.Path, err)
	}

	// Stop at once when reshd's side ends: close the file (a read of a
	// FIFO waiting for data ends) and unblock a write waiting for window.
	var stopped, finished atomic.Bool
	stop := sync.OnceFunc(func() {
		if finished.Load() {
			return
		}
		stopped.Store(true)
		_ = f.Close()
		if d, ok := stream.(interface{ SetWriteDeadline(time.Time) error }); ok {
			_ = d.SetWriteDeadline(time.Now())
		}
	})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_, _ = io.Copy(io.Discard, stream)
		stop()
	}()
	defer context.AfterFunc(ctx, stop)()
	defer func() {
		finished.Store(true)
		if d, ok := stream.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(time.Now())
			<-watched
		}
	}()

	c := &counter{w: stream, m: m}
	// Large reads: a yamux frame (and its TLS records) per read, and an
	// *os.File would otherwise copy through its own 32 KiB buffer.
	buf := make([]byte, readBuffer)
	_, err = io.CopyBuffer(c, onlyReader{f}, buf)
	if stopped.Load() {
		return &StoppedError{Path: open.Path, Sent: c.n}
	}
	if err != nil {
		return fmt.Errorf("lcat %s: %w", open.Path, err)
	}
	if err := stream.Close(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("lcat %s: %w", open.Path, err)
	}
	return nil
}

// readBuffer is the size of the reads of a client file sent to lcat.
const readBuffer = 256 << 10

// onlyReader hides a reader's WriteTo, so that io.CopyBuffer uses the
// buffer it is given.
type onlyReader struct{ io.Reader }

// refuse sends a TransferReply carrying err's message.
func refuse(stream io.Writer, err error) error {
	if werr := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: err.Error()}); werr != nil {
		return fmt.Errorf("lcat: cannot answer reshd: %w", werr)
	}
	return fmt.Errorf("lcat: %w", err)
}

// counter counts the bytes written through it and reports the running
// total to m.
type counter struct {
	w io.Writer
	n int64
	m Meter
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.m != nil {
		c.m.Update(c.n)
	}
	return n, err
}
