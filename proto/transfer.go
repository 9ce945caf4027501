package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// NotInSession is the message of lcat or ltee started outside a resh
// session.
const NotInSession = "not inside a resh session (RESH_SOCKET is not set)"

// ErrNoSession is returned when RESH_SOCKET cannot be reached.
var ErrNoSession = errors.New("not inside a resh session")

// DialSession connects to the session's RESH_SOCKET; failing, its error says
// that this is not a working resh session.
func DialSession(ctx context.Context, socket string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // drop the "dial unix PATH:" prefix
		}
		return nil, fmt.Errorf("%w (cannot reach RESH_SOCKET %s: %v)", ErrNoSession, socket, err)
	}
	return c.(*net.UnixConn), nil
}

// OpenTransfer starts a transfer (proto/spec.md §3) through the session's
// socket: it sends open and reads the client's reply. A refusal or failure
// comes back as an error for the user, prefixed by the path; cancelling ctx
// closes the connection.
func OpenTransfer(ctx context.Context, socket string, open TransferOpen) (*net.UnixConn, TransferReply, error) {
	var reply TransferReply
	c, err := DialSession(ctx, socket)
	if err != nil {
		return nil, reply, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := WriteMessage(c, TypeTransferOpen, open); err != nil {
		_ = c.Close()
		return nil, reply, fmt.Errorf("%s: asking reshd: %w", open.Path, err)
	}
	if err := Expect(c, TypeTransferReply, &reply); err != nil {
		_ = c.Close()
		return nil, reply, fmt.Errorf("%s: %s", open.Path, Describe(err))
	}
	if !reply.OK {
		_ = c.Close()
		return nil, reply, errors.New(WithPath(open.Path, reply.Error))
	}
	return c, reply, nil
}

// Describe turns a failure to read a reply into a message for the user.
func Describe(err error) string {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return re.Message
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the resh session ended before the client answered"
	}
	return err.Error()
}

// DescribeDone turns a failure to read a TransferDone into a message for
// the user.
func DescribeDone(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the resh session ended before the transfer did"
	}
	return Describe(err)
}

// WithPath prefixes a client's message with the file name, unless it
// already names it ("no such file: a.txt", "permission denied: /etc/x is
// outside ..."): the name as a word of its own, ended by a space, a colon,
// a comma, a closing parenthesis or the message's end.
func WithPath(name, msg string) string {
	if msg == "" {
		msg = "refused by the client"
	}
	if mentions(msg, name) {
		return msg
	}
	return name + ": " + msg
}

// mentions reports whether msg has name as a word of its own.
func mentions(msg, name string) bool {
	if name == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(msg[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		before := start == 0 || msg[start-1] == ' '
		after := end == len(msg) || strings.IndexByte(" :,)", msg[end]) >= 0
		if before && after {
			return true
		}
		i = start + 1
	}
}

// Messages of transfers beside those in proto.go (spec.md §3).
const (
	TypeTransferEnd  Type = 11 // TransferEnd: reshd ends the chunked data of a write
	TypeTransferPass Type = 12 // TransferPass: a tool hands reshd its standard streams
	TypeTransferDone Type = 13 // TransferDone: reshd tells the tool how a passed transfer ended
)

// TransferEnd follows the last chunk of a write (spec.md §3.4): OK when the
// tool's input reached its end and every byte was sent; Bytes, the number
// of data bytes sent.
type TransferEnd struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Bytes int64  `json:"bytes"`
}

// TransferPass asks reshd to do a transfer in the tool's place with the
// descriptors sent along (spec.md §3.3): stdout for OpRead (one path);
// stdin then stdout for OpWrite and OpAppend (one or more paths, all fed
// from stdin). SIGPIPE says that a broken pipe on stdout kills the tool, as
// it would have had the tool written it.
type TransferPass struct {
	Op      string   `json:"op"`
	Paths   []string `json:"paths"`
	Tool    string   `json:"tool,omitempty"`
	SIGPIPE bool     `json:"sigpipe,omitempty"`
}

// TransferDone ends a passed transfer: the messages for the user, in order
// ("lcat: " or "ltee: " goes in front); Stdout when writing standard output
// failed (lcat stops there); SIGPIPE when it failed with a broken pipe and
// the tool asked for SIGPIPE.
type TransferDone struct {
	Errors  []string `json:"errors,omitempty"`
	Stdout  bool     `json:"stdout,omitempty"`
	SIGPIPE bool     `json:"sigpipe,omitempty"`
}

// MaxChunk bounds a chunk of a write's data.
const MaxChunk = 1 << 20

// ErrNoPass is PassTransfer's answer when reshd does not take the transfer
// over (an older reshd, or standard streams it leaves to the tool, such as
// a terminal): the tool then uses OpenTransfer.
var ErrNoPass = errors.New("reshd does not take the transfer over")

// PassTransfer hands a transfer to reshd (spec.md §3.3): it sends pass with
// the descriptors of files (stdout for a read; stdin, stdout for a write)
// and reads reshd's first answer, the client's TransferReply for the first
// path. The tool then reads one TransferReply for each further path, and a
// TransferDone, on the returned connection. ErrNoPass means the tool
// should use OpenTransfer instead; a failure to reach the socket wraps
// ErrNoSession. Cancelling ctx closes the connection.
func PassTransfer(ctx context.Context, socket string, pass TransferPass, files ...*os.File) (*net.UnixConn, TransferReply, error) {
	var reply TransferReply
	c, err := DialSession(ctx, socket)
	if err != nil {
		return nil, reply, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	fail := func(err error) (*net.UnixConn, TransferReply, error) {
		_ = c.Close()
		return nil, reply, err
	}
	err = withFDs(files, nil, func(fds []int) error {
		return WriteMessage(&rightsWriter{c: c, oob: syscall.UnixRights(fds...)}, TypeTransferPass, pass)
	})
	if err != nil {
		// A descriptor that cannot be sent (closed, say) is for the relay
		// to report as the tool would have.
		return fail(ErrNoPass)
	}
	err = Expect(c, TypeTransferReply, &reply)
	var re *RemoteError
	if errors.As(err, &re) {
		return fail(ErrNoPass)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fail(fmt.Errorf("%s: %s", pass.Paths[0], Describe(err)))
	}
	return c, reply, nil
}

// withFDs calls f with the descriptors of files, valid during the call.
func withFDs(files []*os.File, fds []int, f func([]int) error) error {
	if len(files) == 0 {
		return f(fds)
	}
	rc, err := files[0].SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = withFDs(files[1:], append(fds, int(fd)), f) }); err != nil {
		return err
	}
	return ferr
}

// rightsWriter sends oob (SCM_RIGHTS) with the first bytes written.
type rightsWriter struct {
	c   *net.UnixConn
	oob []byte
}

func (w *rightsWriter) Write(p []byte) (int, error) {
	n, _, err := w.c.WriteMsgUnix(p, w.oob, nil)
	w.oob = nil
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// ReadMessageFDs reads one message like ReadMessage, and the descriptors
// sent with it (close-on-exec). The caller owns them, even with an error.
func ReadMessageFDs(c *net.UnixConn) (Type, []byte, []int, error) {
	r := &rightsReader{c: c}
	t, body, err := ReadMessage(r)
	if err == nil {
		err = r.err
	}
	return t, body, r.fds, err
}

// rightsReader collects the descriptors that come with what it reads.
type rightsReader struct {
	c   *net.UnixConn
	fds []int
	err error // descriptors lost or unreadable
}

func (r *rightsReader) Read(p []byte) (int, error) {
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, flags, _, err := r.c.ReadMsgUnix(p, oob)
	if oobn > 0 {
		msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				perr = err
				continue
			}
			r.fds = append(r.fds, fds...)
		}
		if perr != nil && r.err == nil {
			r.err = fmt.Errorf("bad file descriptors passed to reshd: %w", perr)
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 && r.err == nil {
		r.err = errors.New("bad file descriptors passed to reshd: too many")
	}
	return n, err
}

// WriteRaw writes a message whose body is already encoded, such as one
// read with ReadMessage and passed on.
func WriteRaw(w io.Writer, t Type, body []byte) error {
	if len(body) > MaxMessage {
		return ErrTooLong
	}
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(1+len(body)))
	b[4] = byte(t)
	_, err := w.Write(append(b, body...))
	return err
}

// ChunkHeader is the room a chunk needs in front of its data.
const ChunkHeader = 4

// PutChunkHeader fills b[:ChunkHeader] with the length of the data that
// follows in b, so that b goes out in one write.
func PutChunkHeader(b []byte) {
	binary.BigEndian.PutUint32(b, uint32(len(b)-ChunkHeader))
}

// WriteEnd writes the end mark of chunked data: a chunk of length 0, then
// end.
func WriteEnd(w io.Writer, end TransferEnd) error {
	var b bytes.Buffer
	b.Write(make([]byte, ChunkHeader))
	if err := WriteMessage(&b, TypeTransferEnd, end); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ChunkReader reads chunked data (spec.md §3.4): Read returns the data,
// then io.EOF once the end mark came, which End then holds. A stream that
// ends before its end mark gives io.ErrUnexpectedEOF.
type ChunkReader struct {
	r    io.Reader
	left uint32 // bytes of the current chunk not read yet
	err  error
	End  TransferEnd
}

// NewChunkReader reads chunked data from r.
func NewChunkReader(r io.Reader) *ChunkReader { return &ChunkReader{r: r} }

func (c *ChunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		var h [ChunkHeader]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			c.err = noEOF(err)
			return 0, c.err
		}
		n := binary.BigEndian.Uint32(h[:])
		if n == 0 {
			if err := Expect(c.r, TypeTransferEnd, &c.End); err != nil {
				c.err = noEOF(err)
				return 0, c.err
			}
			c.err = io.EOF
			return 0, io.EOF
		}
		if n > MaxChunk {
			c.err = fmt.Errorf("%w: chunk of %d bytes", ErrTooLong, n)
			return 0, c.err
		}
		c.left = n
	}
	if uint32(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= uint32(n)
	if err != nil {
		c.err = noEOF(err)
		if n > 0 {
			return n, nil
		}
	}
	return n, c.err
}

// noEOF turns an end of stream in the middle of chunked data into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
