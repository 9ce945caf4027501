package mitm

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// The frames of the resh connection protocol, as connection/spec.md §1
// defines them (restated here: mitm does not depend on package connection).
// All integers are big-endian; CRC-32C is the Castagnoli CRC.
//
//	offset  size  field
//	0       2     magic B7 1E
//	2       1     type (1..9; 5 is DATA)
//	3       1     flags
//	4       4     len: payload length, at most 1 MiB
//	8       8     seq
//	16      8     ack
//	24      4     wnd
//	28      4     hcrc: CRC-32C of bytes 0..27
//	32      len   payload
//	32+len  4     pcrc, only when len > 0: CRC-32C of bytes 0..31+len
const (
	frameMagic0     = 0xB7
	frameMagic1     = 0x1E
	frameHeaderLen  = 32
	frameMaxPayload = 1 << 20
	frameTypeData   = 5
	frameTypeMax    = 9
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameAt checks the frame header at the start of b, which starts with the
// first magic byte, as a receiver does (spec §1.1: magic, hcrc, then len
// and type). It returns the size of the frame and whether it is a DATA
// frame with a payload; size is 0 when b is too short to tell, -1 when no
// frame starts here.
func frameAt(b []byte) (size int, data bool) {
	switch {
	case len(b) < 2:
		return 0, false
	case b[1] != frameMagic1:
		return -1, false
	case len(b) < frameHeaderLen:
		return 0, false
	case crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:]):
		return -1, false
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > frameMaxPayload || b[2] < 1 || b[2] > frameTypeMax {
		return -1, false
	}
	if n == 0 {
		return frameHeaderLen, false
	}
	return frameHeaderLen + int(n) + 4, b[2] == frameTypeData
}

// tamperer is the Tamper fault of one direction of one connection: an
// attacker that knows the framing. It finds the frames as a receiver does,
// replaces payload bytes of DATA frames and recomputes their pcrc, so that
// the frames still pass every check. Everything else passes untouched:
// bytes that are not frames, frames of other types, and DATA frames whose
// pcrc does not verify (the scan then goes on from their second byte, as a
// receiver's would). Its output is as long as its input, byte for byte at
// the same offsets, and does not depend on how the input is split into
// calls to process.
//
// A DATA frame is held until its pcrc has arrived (at most 1 MiB + 36
// bytes), since whether it is one is only known then, and so is what may be
// the start of a header (at most 31 bytes); everything else streams.
type tamperer struct {
	key    uint64
	pos    int64  // input offset of held[0]: every byte before it was output
	held   []byte // input not yet output: the start of a header or a DATA frame
	skip   int64  // bytes of the current non-DATA frame still to pass
	ev     event
	report func(kind int, off int64, n int) // called for each byte tampered; may be nil
}

// newTamperer returns a tamperer for the stream with the given key,
// starting at input offset off, with probability p per DATA payload byte.
func newTamperer(key uint64, off int64, p float64, report func(kind int, off int64, n int)) *tamperer {
	t := &tamperer{key: key, pos: off, report: report}
	t.set(p)
	return t
}

// set changes the probability; a changed one is re-armed from the first
// byte not yet decided.
func (t *tamperer) set(p float64) {
	if t.ev.kind == 0 || t.ev.p != p {
		t.ev.arm(t.key, kindTamper, p, t.pos)
	}
}

// process appends to dst the output for the input p and returns it.
func (t *tamperer) process(dst, p []byte) []byte {
	for len(p) > 0 {
		var used int
		if len(t.held) == 0 {
			dst, used = t.scan(dst, p)
			t.held = append(t.held, p[used:]...)
			return dst
		}
		// Complete what is held, no further than it needs, and scan it.
		n := min(t.need()-len(t.held), len(p))
		t.held = append(t.held, p[:n]...)
		p = p[n:]
		dst, used = t.scan(dst, t.held)
		t.held = t.held[:copy(t.held, t.held[used:])]
	}
	return dst
}

// need returns how many bytes held must have for scan to decide on it.
func (t *tamperer) need() int {
	if len(t.held) < frameHeaderLen {
		return frameHeaderLen
	}
	size, _ := frameAt(t.held) // a DATA header: scan kept it
	return size
}

// flush appends to dst what t holds, untouched, and returns it: at the end
// of the input, or when the fault is switched off or stops the stream.
func (t *tamperer) flush(dst []byte) []byte {
	dst = append(dst, t.held...)
	t.pos += int64(len(t.held))
	t.held = t.held[:0]
	return dst
}

// scan appends to dst the output for b, the input from offset t.pos on, as
// far as it can be decided, and returns it with the number of bytes of b
// used; the rest is the start of a header or of a DATA frame.
func (t *tamperer) scan(dst, b []byte) ([]byte, int) {
	i := 0
	for i < len(b) {
		if t.skip > 0 {
			n := int(min(t.skip, int64(len(b)-i)))
			dst = append(dst, b[i:i+n]...)
			t.skip -= int64(n)
			i += n
			continue
		}
		j := bytes.IndexByte(b[i:], frameMagic0)
		if j < 0 {
			dst = append(dst, b[i:]...)
			i = len(b)
			break
		}
		dst = append(dst, b[i:i+j]...)
		i += j
		size, data := frameAt(b[i:])
		if size == 0 || data && len(b)-i < size {
			break // wait for more
		}
		switch {
		case size < 0 || data && !pcrcOK(b[i:i+size]):
			dst = append(dst, b[i])
			i++
		case !data:
			dst = append(dst, b[i:i+frameHeaderLen]...)
			i += frameHeaderLen
			t.skip = int64(size - frameHeaderLen)
		default:
			dst = t.tamper(dst, b[i:i+size], t.pos+int64(i))
			i += size
		}
	}
	t.pos += int64(i)
	return dst, i
}

// pcrcOK reports whether the pcrc of the whole frame f verifies.
func pcrcOK(f []byte) bool {
	n := len(f) - 4
	return crc32.Checksum(f[:n], castagnoli) == binary.BigEndian.Uint32(f[n:])
}

// tamper appends to dst the DATA frame f, at input offset at, with the
// payload bytes the event picks replaced and, if any was, a new pcrc.
func (t *tamperer) tamper(dst, f []byte, at int64) []byte {
	start := len(dst)
	dst = append(dst, f...)
	first, end := at+frameHeaderLen, at+int64(len(f))-4 // the payload
	for t.ev.next < first {
		t.ev.advance(t.key, t.ev.next) // not a payload byte
	}
	if t.ev.next >= end {
		return dst
	}
	out := dst[start:]
	for t.ev.next < end {
		k := t.ev.next
		out[k-at] = tamperByte(t.key, k, out[k-at])
		if t.report != nil {
			t.report(kindTamper, k, 1)
		}
		t.ev.advance(t.key, k)
	}
	n := len(out) - 4
	binary.BigEndian.PutUint32(out[n:], crc32.Checksum(out[:n], castagnoli))
	return dst
}

// tamperByte returns the replacement for byte b at offset off: always a
// different value.
func tamperByte(key uint64, off int64, b byte) byte {
	return b ^ byte(1+hashAt(key, kindTamper|kindReseed<<1, off)%255)
}
