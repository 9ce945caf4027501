package connection

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// Frame layout (big-endian, see spec.md):
//
//	0  magic   2  0xB7 0x1E
//	2  type    1
//	3  flags   1
//	4  len     4  payload length, at most maxPayload
//	8  seq     8  byte offset of the first payload byte (DATA)
//	16 ack     8  next byte offset expected from the peer
//	24 wnd     4  bytes the sender of this frame can still buffer beyond ack
//	28 hcrc    4  CRC-32C of bytes 0..27
//	32 payload len bytes
//	   pcrc    4  CRC-32C of header and payload; present only when len > 0
const (
	headerLen  = 32
	trailerLen = 4
	// maxPayload bounds every length read from the wire, before any
	// allocation; Config.MaxFrameSize may not exceed it.
	maxPayload = 1 << 20
	magic0     = 0xB7
	magic1     = 0x1E
)

// frameType is the second field of every frame.
type frameType byte

const (
	// frameServerHello opens every transport, server first.
	// Payload: version(1) nonce(32).
	frameServerHello frameType = 1
	// frameHello is the client's answer. Payload: version(1) kind(1), and for
	// kind resume: id(16) rcvNxt(8) proof(32).
	frameHello frameType = 2
	// frameWelcome accepts a hello. Payload: version(1) kind(1) id(16), then
	// secret(32) for a new session (none with flagKeyAbove) or rcvNxt(8)
	// for a resume.
	frameWelcome frameType = 3
	// frameReject refuses a hello. Payload: code(1) message(UTF-8, ≤ 256).
	frameReject frameType = 4
	// frameData carries stream bytes at seq; flag flagFin ends the stream
	// right after its payload.
	frameData frameType = 5
	// frameAck acknowledges and advertises a window; flag flagNak asks
	// for immediate retransmission from ack.
	frameAck frameType = 6
	// framePing asks for an ACK: a heartbeat and a window probe.
	framePing frameType = 7
	// frameClose says the sender has closed: everything it wrote was
	// acknowledged, and it only acknowledges (and discards) from now on.
	frameClose frameType = 8
	// frameCloseAck answers frameClose once the answering side has no
	// unacknowledged bytes left; both ends then drop the session.
	frameCloseAck frameType = 9
)

const (
	flagFin byte = 1 << 0 // frameData: the stream ends after this payload
	flagNak byte = 1 << 0 // frameAck: damage seen, retransmit from ack now
	// flagKeyAbove (frameWelcome of a new session): the resume key comes
	// from the security layer above, installed by SetResumeKey; the WELCOME
	// carries no secret.
	flagKeyAbove byte = 1 << 0
	// Bits 1..7 of DATA flags carry the sender's go-back round (epoch); an
	// ACK echoes the round of the last DATA frame received. A NAK's echo
	// makes the sender go back once per round, never for damage it already
	// resent; any ACK's echo makes round-trip samples unambiguous.
	epochMask byte = 0x7f
)

func (t frameType) String() string {
	switch t {
	case frameServerHello:
		return "SERVER_HELLO"
	case frameHello:
		return "HELLO"
	case frameWelcome:
		return "WELCOME"
	case frameReject:
		return "REJECT"
	case frameData:
		return "DATA"
	case frameAck:
		return "ACK"
	case framePing:
		return "PING"
	case frameClose:
		return "CLOSE"
	case frameCloseAck:
		return "CLOSE_ACK"
	}
	return "UNKNOWN"
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a decoded frame header.
type header struct {
	typ   frameType
	flags byte
	len   uint32
	seq   uint64
	ack   uint64
	wnd   uint32
}

// frame is a decoded frame; payload may alias the decoder's buffer.
type frame struct {
	header
	payload []byte
}

var (
	errBadMagic   = errors.New("damaged data: bad frame magic")
	errHeaderCRC  = errors.New("damaged data: frame header checksum mismatch")
	errPayloadCRC = errors.New("damaged data: frame payload checksum mismatch")
	errTooLong    = errors.New("damaged data: frame length over the protocol maximum")
	errFrameType  = errors.New("damaged data: unknown frame type")
)

// appendFrame appends the encoding of a frame with header h (its len field is
// taken from payload) and payload to b.
func appendFrame(b []byte, h header, payload []byte) []byte {
	return appendFrame2(b, h, payload, nil)
}

// appendFrame2 is appendFrame with the payload in two pieces (from a ring).
func appendFrame2(b []byte, h header, p1, p2 []byte) []byte {
	start := len(b)
	b = appendHeader(b, h, len(p1)+len(p2))
	if len(p1)+len(p2) == 0 {
		return b
	}
	b = append(b, p1...)
	b = append(b, p2...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// appendHeader appends the header of a frame with n payload bytes.
func appendHeader(b []byte, h header, n int) []byte {
	h.len = uint32(n)
	start := len(b)
	b = append(b, magic0, magic1, byte(h.typ), h.flags)
	b = binary.BigEndian.AppendUint32(b, h.len)
	b = binary.BigEndian.AppendUint64(b, h.seq)
	b = binary.BigEndian.AppendUint64(b, h.ack)
	b = binary.BigEndian.AppendUint32(b, h.wnd)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:start+28], castagnoli))
}

// payloadTrailer returns the pcrc of a frame whose encoded header is hdr and
// whose payload is p1 then p2, for sending the payload without copying it.
func payloadTrailer(hdr, p1, p2 []byte) [trailerLen]byte {
	crc := crc32.Update(crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, p1), castagnoli, p2)
	var t [trailerLen]byte
	binary.BigEndian.PutUint32(t[:], crc)
	return t
}

// frameLen is the encoded size of a frame with n payload bytes.
func frameLen(n int) int {
	if n == 0 {
		return headerLen
	}
	return headerLen + n + trailerLen
}

// parseHeader checks and decodes the header at the start of b, which must
// hold at least headerLen bytes. The length is trusted only after the
// checksum matched, and is checked against maxPayload.
func parseHeader(b []byte) (header, error) {
	if b[0] != magic0 || b[1] != magic1 {
		return header{}, errBadMagic
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return header{}, errHeaderCRC
	}
	h := header{
		typ:   frameType(b[2]),
		flags: b[3],
		len:   binary.BigEndian.Uint32(b[4:8]),
		seq:   binary.BigEndian.Uint64(b[8:16]),
		ack:   binary.BigEndian.Uint64(b[16:24]),
		wnd:   binary.BigEndian.Uint32(b[24:28]),
	}
	if h.len > maxPayload {
		return header{}, errTooLong
	}
	if h.typ < frameServerHello || h.typ > frameCloseAck {
		return header{}, errFrameType
	}
	return h, nil
}

// parseFrame decodes one frame from the start of b. It returns the frame and
// the number of bytes it used. A b too short for the frame gives io.EOF when
// empty and io.ErrUnexpectedEOF otherwise; the returned payload aliases b.
func parseFrame(b []byte) (frame, int, error) {
	if len(b) == 0 {
		return frame{}, 0, io.EOF
	}
	if len(b) < 2 {
		if b[0] != magic0 {
			return frame{}, 0, errBadMagic
		}
		return frame{}, 0, io.ErrUnexpectedEOF
	}
	if b[0] != magic0 || b[1] != magic1 {
		return frame{}, 0, errBadMagic
	}
	if len(b) < headerLen {
		return frame{}, 0, io.ErrUnexpectedEOF
	}
	h, err := parseHeader(b)
	if err != nil {
		return frame{}, 0, err
	}
	n := frameLen(int(h.len))
	if len(b) < n {
		return frame{}, 0, io.ErrUnexpectedEOF
	}
	if h.len > 0 {
		if crc32.Checksum(b[:n-trailerLen], castagnoli) != binary.BigEndian.Uint32(b[n-trailerLen:n]) {
			return frame{}, 0, errPayloadCRC
		}
	}
	return frame{header: h, payload: b[headerLen : headerLen+int(h.len)]}, n, nil
}
