package server

import (
	"encoding/binary"
	"fmt"
	"io"

	"resh/proto"
)

// controlReader reads messages (proto.ReadMessage) from the control stream
// across the read deadlines that wake the session: a read cut by a
// deadline leaves what it read of a message for the next call.
type controlReader struct {
	r    io.Reader
	hdr  [5]byte // length (4 bytes) and type
	hn   int
	body []byte // allocated once the length is known
	bn   int
}

// next returns the next message, or the error that cut it (the message
// goes on at the next call).
func (c *controlReader) next() (proto.Type, []byte, error) {
	for c.hn < len(c.hdr) {
		n, err := c.r.Read(c.hdr[c.hn:])
		c.hn += n
		if err != nil {
			return 0, nil, err
		}
	}
	if c.body == nil {
		n := binary.BigEndian.Uint32(c.hdr[:4])
		if n < 1 || n-1 > proto.MaxMessage {
			return 0, nil, fmt.Errorf("%w: %d bytes", proto.ErrTooLong, n)
		}
		c.body = make([]byte, n-1)
	}
	for c.bn < len(c.body) {
		n, err := c.r.Read(c.body[c.bn:])
		c.bn += n
		if err != nil {
			return 0, nil, err
		}
	}
	t, body := proto.Type(c.hdr[4]), c.body
	c.hn, c.body, c.bn = 0, nil, 0
	return t, body, nil
}
