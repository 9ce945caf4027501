package connection

import (
	"bytes"
	"errors"
	"io"
)

// decoder reads frames from a byte stream that may be damaged. It checks the
// header before trusting its length and the payload before returning it; on
// any mismatch it drops one byte and searches for the next magic, so that it
// resynchronises on the next intact frame whatever was replaced, removed or
// inserted. It is written by hand because it must peek across reads without
// consuming, grow only to the size a checked header asks for, and count what
// it skipped, which bufio.Reader cannot do together.
type decoder struct {
	r     io.Reader
	buf   []byte
	start int // first unread byte
	end   int // one past the last read byte

	// strict makes any damage an error (used during the handshake, where a
	// peer that does not speak the protocol must be told so at once).
	strict bool

	// skipped counts bytes dropped while resynchronising since the caller
	// last reset it; damaged counts frames whose header was intact but whose
	// payload failed its checksum.
	skipped int64
	damaged int64
	total   int64 // bytes read from the transport

	// starving, if set, is called before each read from the transport,
	// which may block: the caller answers the frames handled so far (one
	// ACK per burst of frames read together).
	starving func()
	// idle, if set, is called by shrink: the session's own idle release.
	idle func()
}

const decoderMinBuf = 4 << 10

func newDecoder(r io.Reader) *decoder {
	return &decoder{r: r, buf: make([]byte, decoderMinBuf)}
}

// fill reads at least once, making sure the buffer can hold need unread
// bytes. need never exceeds frameLen(maxPayload).
func (d *decoder) fill(need int) error {
	if d.starving != nil {
		d.starving()
	}
	if need > len(d.buf) {
		nb := make([]byte, max(need, min(2*len(d.buf), frameLen(maxPayload))))
		d.end = copy(nb, d.buf[d.start:d.end])
		d.start = 0
		d.buf = nb
	} else if d.start+need > len(d.buf) {
		d.end = copy(d.buf, d.buf[d.start:d.end])
		d.start = 0
	}
	n, err := d.r.Read(d.buf[d.end:])
	d.end += n
	d.total += int64(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (d *decoder) skip(n int) {
	d.start += n
	d.skipped += int64(n)
}

// next returns the next intact frame. Its payload aliases the decoder's
// buffer and is valid until the following call.
func (d *decoder) next() (frame, error) {
	for {
		avail := d.buf[d.start:d.end]
		if len(avail) >= 1 && avail[0] != magic0 || len(avail) >= 2 && avail[1] != magic1 {
			if d.strict {
				return frame{}, ErrNotResh
			}
			// Jump to the next candidate magic.
			i := bytes.IndexByte(avail[1:], magic0)
			if i < 0 {
				d.skip(len(avail))
			} else {
				d.skip(i + 1)
			}
			continue
		}
		f, n, err := parseFrame(avail)
		switch {
		case err == nil:
			d.start += n
			if d.start == d.end {
				d.start, d.end = 0, 0
			}
			return f, nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			need := headerLen
			if len(avail) >= headerLen {
				h, _ := parseHeader(avail) // checked by parseFrame already
				need = frameLen(int(h.len))
			}
			if err := d.fill(need); err != nil {
				if errors.Is(err, io.EOF) && d.start != d.end {
					return frame{}, io.ErrUnexpectedEOF
				}
				return frame{}, err
			}
		default:
			if d.strict {
				return frame{}, ErrNotResh
			}
			if errors.Is(err, errPayloadCRC) {
				d.damaged++
			}
			d.skip(1)
		}
		if d.start == d.end {
			d.start, d.end = 0, 0
		}
	}
}

// decoderIdleBuf is what an idle decoder keeps: room for a few frames
// without payload (acknowledgements, heartbeats). The next long frame
// grows it again.
const decoderIdleBuf = 256

// shrink gives back the buffer once it is empty, down to decoderIdleBuf,
// and calls idle; the reader calls it when the session has gone idle.
func (d *decoder) shrink() {
	if d.idle != nil {
		d.idle()
	}
	if d.start == d.end && len(d.buf) > decoderIdleBuf {
		d.buf = make([]byte, decoderIdleBuf)
		d.start, d.end = 0, 0
	}
}
