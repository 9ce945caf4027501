package tee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"

	"resh/proto"
)

// bufSize is the copy buffer: a pipe hands over at most its capacity
// (64 KiB) per read, and a yamux stream takes its window (256 KiB).
const bufSize = 256 << 10

// Conn carries one file's data to the client: ltee's connection to reshd
// when reshd relays, the stream to the client when reshd does the copy.
// Close must also end a Write blocked on it.
type Conn interface {
	io.ReadWriter
	CloseWrite() error // the data is complete
	Close() error
}

// Sink is one client file that Copy writes.
type Sink struct {
	name    string
	conn    Conn
	chunked bool // the data goes in chunks with an end mark (spec.md §3.4)

	sent     int64
	werr     error       // the first error writing to conn; the sink is dropped
	closed   atomic.Bool // we half-closed: a result now is the normal end
	done     chan struct{}
	result   proto.TransferResult
	resErr   error // reading the result failed
	resEarly bool  // the result came before our half-close
}

// NewSink is the file name, written on conn, in chunks when the client
// took them.
func NewSink(name string, conn Conn, chunked bool) *Sink {
	return &Sink{name: name, conn: conn, chunked: chunked, done: make(chan struct{})}
}

// Copy is ltee's copy, in ltee or in reshd: it copies in to out and to
// each sink, ends each sink's data, and waits for the client's results. It
// returns the messages for the user, in order ("ltee: " goes in front):
// failures of stdin and stdout, then of each file. Every byte that went
// to out goes to the sinks too, even from a write to out that failed
// (spec.md §3.3: each byte to stdout before the paths). If onSIGPIPE is not
// nil, a broken pipe on out ends the copy as SIGPIPE would end ltee: Copy
// reads no more, ends the sinks' data marked failed, calls onSIGPIPE, and
// returns piped true and no messages. Cancelling ctx stops the copy before
// the next read; the caller arranges for a read or write in progress to
// end.
func Copy(ctx context.Context, in io.Reader, out io.Writer, sinks []*Sink, onSIGPIPE func()) (msgs []string, piped bool) {
	report := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	for _, s := range sinks {
		go s.readResult()
	}

	stdoutOK := true
	complete := false // in ended, and every byte read went on
	why := ""
	buf := make([]byte, proto.ChunkHeader+bufSize)
	for ctx.Err() == nil {
		n, rerr := in.Read(buf[proto.ChunkHeader:])
		stop := false // after the sinks get what went to stdout
		if n > 0 && stdoutOK {
			if w, err := out.Write(buf[proto.ChunkHeader : proto.ChunkHeader+n]); err != nil {
				switch {
				case ctx.Err() != nil:
					stop, n = true, w
				case onSIGPIPE != nil && errors.Is(err, syscall.EPIPE):
					stop, n = true, w
					piped = true
					why = "ltee was killed by SIGPIPE"
				default:
					report("standard output: %v", err)
					stdoutOK = false
				}
			}
		}
		if n > 0 {
			write(sinks, buf[:proto.ChunkHeader+n])
		}
		if stop {
			break
		}
		if rerr == io.EOF {
			complete = true
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				break
			}
			report("standard input: %v", rerr)
			why = "ltee could not read its input"
			break
		}
	}
	if !complete && why == "" {
		why = "ltee ended before its input did"
	}

	// End every file's data and collect its result.
	for _, s := range sinks {
		if s.werr != nil {
			continue
		}
		// From here on, the client's result is the normal end.
		s.closed.Store(true)
		if s.chunked {
			end := proto.TransferEnd{OK: complete, Bytes: s.sent}
			if !complete {
				end.Error = why
			}
			if err := proto.WriteEnd(s.conn, end); err != nil {
				s.werr = err
				continue
			}
		}
		if err := s.conn.CloseWrite(); err != nil {
			s.werr = err
		}
	}
	if piped {
		// The end marks went out before the tool dies, and with it,
		// often, the session.
		onSIGPIPE()
	}
	for _, s := range sinks {
		<-s.done
		_ = s.conn.Close()
		if piped {
			continue
		}
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
	if piped {
		msgs = nil
	}
	return msgs, piped
}

// write sends chunk, a chunk header's room then the data, to every sink
// still up: chunked or raw as the sink takes it.
func write(sinks []*Sink, chunk []byte) {
	proto.PutChunkHeader(chunk)
	data := chunk[proto.ChunkHeader:]
	for _, s := range sinks {
		if s.werr != nil {
			continue
		}
		b := data
		if s.chunked {
			b = chunk
		}
		if _, err := s.conn.Write(b); err != nil {
			s.werr = err
			continue
		}
		s.sent += int64(len(data))
	}
}

// readResult waits for the TransferResult. One that comes before our
// half-close means the client gave up: closing the connection then keeps
// the copy from blocking on it.
func (s *Sink) readResult() {
	defer close(s.done)
	s.resErr = proto.Expect(s.conn, proto.TypeTransferResult, &s.result)
	if !s.closed.Load() {
		s.resEarly = s.resErr == nil
		_ = s.conn.Close()
	}
}
