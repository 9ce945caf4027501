package cat

import (
	"errors"
	"fmt"
	"io"

	"resh/access"
	"resh/proto"
)

// ServeRead is the client's half of lcat: it serves the file named by open
// (an OpRead) on stream, which the remote lcat reads. It replies with a
// TransferReply (a refusal carries the message for the user), then sends the
// file's bytes and closes stream (a half-close on a yamux stream). progress,
// if not nil, is called with the number of bytes sent so far.
func ServeRead(stream io.ReadWriteCloser, open proto.TransferOpen, dirs *access.Dirs, progress func(n int64)) error {
	defer stream.Close()
	if open.Op != proto.OpRead {
		msg := fmt.Sprintf("lcat: unsupported operation %q", open.Op)
		_ = proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return fmt.Errorf("cat: %s", msg)
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
	if err := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: size}); err != nil {
		return fmt.Errorf("cat: reply: %w", err)
	}
	var w io.Writer = stream
	if progress != nil {
		w = &counter{w: stream, progress: progress}
	}
	// Large reads: a yamux frame (and its TLS records) per read, and an
	// *os.File would otherwise copy through its own 32 KiB buffer.
	buf := make([]byte, readBuffer)
	if _, err := io.CopyBuffer(w, onlyReader{f}, buf); err != nil {
		return fmt.Errorf("cat: send %s: %w", open.Path, err)
	}
	if err := stream.Close(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cat: close: %w", err)
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
		return fmt.Errorf("cat: reply: %w", werr)
	}
	return fmt.Errorf("cat: %w", err)
}

// counter reports the running total of bytes written through it.
type counter struct {
	w        io.Writer
	n        int64
	progress func(int64)
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.progress(c.n)
	return n, err
}
