package proto

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/hashicorp/yamux"
)

// Client starts the yamux client session of resh over conn (the
// connection, or TLS above it), configured by MuxConfig, its frame headers
// written together with their bodies.
func Client(conn io.ReadWriteCloser) (*yamux.Session, error) {
	return yamux.Client(coalesce(conn), MuxConfig())
}

// Server starts reshd's yamux server session over conn, as Client does,
// with an accept backlog of ServerAcceptBacklog.
func Server(conn io.ReadWriteCloser) (*yamux.Session, error) {
	c := MuxConfig()
	c.AcceptBacklog = ServerAcceptBacklog
	return yamux.Server(coalesce(conn), c)
}

// ServerAcceptBacklog is reshd's accept backlog (spec.md §1.2): the client
// opens four streams, and reshd's own opens (one per transfer) beyond it
// wait for the client's acknowledgements. yamux keeps a slot per backlog
// entry for the session's whole life: 256 would cost 2 KiB per session.
const ServerAcceptBacklog = 32

// yamux's frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	muxHeaderLen = 12
	muxTypeData  = 0
)

// coalescer writes a yamux data frame's header with its body. yamux writes
// them separately, from its one send goroutine; over TLS each Write is a
// record of its own, so every data frame would cost a tiny record (and its
// encryption, framing and acknowledgement) besides the body's. It holds a
// data header whose body is to come and writes it in front of the start of
// the next Write, which is that body: header and up to a TLS record's worth
// of body in one Write, the rest of the body in another. The bytes on the
// wire are unchanged.
type coalescer struct {
	io.ReadWriteCloser
	hdr  [muxHeaderLen]byte
	held bool
}

// maxRecord is the most plaintext a TLS record carries (RFC 8446 §5.1).
const maxRecord = 16 << 10

var recordPool = sync.Pool{New: func() any { return new([maxRecord]byte) }}

func coalesce(conn io.ReadWriteCloser) *coalescer {
	return &coalescer{ReadWriteCloser: conn}
}

func (c *coalescer) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		rec := recordPool.Get().(*[maxRecord]byte)
		defer recordPool.Put(rec)
		copy(rec[:], c.hdr[:])
		n := copy(rec[muxHeaderLen:], p)
		if _, err := c.ReadWriteCloser.Write(rec[:muxHeaderLen+n]); err != nil {
			return 0, err
		}
		if n < len(p) {
			if m, err := c.ReadWriteCloser.Write(p[n:]); err != nil {
				return n + m, err
			}
		}
		return len(p), nil
	}
	if len(p) == muxHeaderLen && p[1] == muxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.ReadWriteCloser.Write(p)
}
