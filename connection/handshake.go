package connection

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ProtocolVersion is the version of the wire protocol in spec.md, bumped on
// any incompatible change.
const ProtocolVersion = 2

const (
	idLen     = 16
	secretLen = 32
	nonceLen  = 32
	proofLen  = sha256.Size
)

// hello kinds.
const (
	kindNew    byte = 0
	kindResume byte = 1
)

// rejectCode says why a server refused a hello.
type rejectCode byte

const (
	rejectVersion   rejectCode = 1 // the client speaks another version
	rejectUnknown   rejectCode = 2 // no such session (never existed or expired)
	rejectSecret    rejectCode = 3 // the resume proof is wrong
	rejectBusy      rejectCode = 4 // accept backlog full
	rejectMalformed rejectCode = 5 // the hello does not parse
	rejectClosed    rejectCode = 6 // the session was closed by the server side
)

type sessionID [idLen]byte

func (id sessionID) String() string { return fmt.Sprintf("%x", id[:4]) }

// hello is the client's HELLO payload.
type hello struct {
	version byte
	kind    byte
	id      sessionID
	rcvNxt  uint64
	proof   [proofLen]byte
}

func (h *hello) append(b []byte) []byte {
	b = append(b, h.version, h.kind)
	if h.kind == kindResume {
		b = append(b, h.id[:]...)
		b = binary.BigEndian.AppendUint64(b, h.rcvNxt)
		b = append(b, h.proof[:]...)
	}
	return b
}

var errMalformed = errors.New("malformed handshake")

// errSilentServer reports a server that sent nothing at all within the
// handshake timeout; a retry would only wait again.
var errSilentServer = errors.New("the server accepted the connection but sent nothing (is it a resh server, reshd?)")

func parseHello(p []byte) (hello, error) {
	var h hello
	if len(p) < 2 {
		return h, errMalformed
	}
	h.version, h.kind = p[0], p[1]
	if h.version != ProtocolVersion {
		return h, nil // the caller rejects with the version code
	}
	switch h.kind {
	case kindNew:
		if len(p) != 2 {
			return h, errMalformed
		}
	case kindResume:
		if len(p) != 2+idLen+8+proofLen {
			return h, errMalformed
		}
		copy(h.id[:], p[2:])
		h.rcvNxt = binary.BigEndian.Uint64(p[2+idLen:])
		copy(h.proof[:], p[2+idLen+8:])
	default:
		return h, errMalformed
	}
	return h, nil
}

// welcome is the server's WELCOME payload.
type welcome struct {
	version byte
	kind    byte
	id      sessionID
	// keyAbove (flag flagKeyAbove of a new session's WELCOME): the resume
	// key will come from the security layer above (Config.SecureAbove), so
	// no secret travels here.
	keyAbove bool
	secret   [secretLen]byte // kindNew without keyAbove
	rcvNxt   uint64          // kindResume
	wnd      uint32          // from the frame header: the server's window
}

func (w *welcome) append(b []byte) []byte {
	b = append(b, w.version, w.kind)
	b = append(b, w.id[:]...)
	if w.kind == kindNew {
		if w.keyAbove {
			return b
		}
		return append(b, w.secret[:]...)
	}
	return binary.BigEndian.AppendUint64(b, w.rcvNxt)
}

func (w *welcome) flags() byte {
	if w.keyAbove {
		return flagKeyAbove
	}
	return 0
}

func parseWelcome(p []byte, flags byte) (welcome, error) {
	var w welcome
	if len(p) < 2+idLen {
		return w, errMalformed
	}
	w.version, w.kind = p[0], p[1]
	copy(w.id[:], p[2:])
	rest := p[2+idLen:]
	w.keyAbove = w.kind == kindNew && flags&flagKeyAbove != 0
	switch {
	case w.kind == kindNew && w.keyAbove && len(rest) == 0:
	case w.kind == kindNew && !w.keyAbove && len(rest) == secretLen:
		copy(w.secret[:], rest)
	case w.kind == kindResume && len(rest) == 8:
		w.rcvNxt = binary.BigEndian.Uint64(rest)
	default:
		return w, errMalformed
	}
	return w, nil
}

// resumeProof binds the session secret to this transport's server nonce, so
// that a recorded resume cannot be replayed on another transport.
func resumeProof(secret *[secretLen]byte, nonce []byte, id sessionID, rcvNxt uint64) [proofLen]byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("resh-connection-resume-v1"))
	m.Write(nonce)
	m.Write(id[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], rcvNxt)
	m.Write(n[:])
	var p [proofLen]byte
	copy(p[:], m.Sum(nil))
	return p
}

func randomBytes(b []byte) {
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
}

// writeFrame writes one handshake frame advertising window wnd; seq and
// ack are zero in handshake frames.
func writeFrame(tr net.Conn, typ frameType, flags byte, wnd uint32, payload []byte) error {
	_, err := tr.Write(appendFrame(nil, header{typ: typ, flags: flags, wnd: wnd}, payload))
	return err
}

// readHandshakeFrame reads the next frame and checks its type; a REJECT
// becomes a *rejectError.
func readHandshakeFrame(d *decoder, want frameType) (frame, error) {
	f, err := d.next()
	if err != nil {
		return f, err
	}
	if f.typ == frameReject && want != frameReject {
		if len(f.payload) < 1 {
			return f, errMalformed
		}
		msg := f.payload[1:]
		if len(msg) > 256 {
			msg = msg[:256]
		}
		return f, &rejectError{code: rejectCode(f.payload[0]), msg: string(msg)}
	}
	if f.typ != want {
		return f, fmt.Errorf("handshake: got %v, want %v: %w", f.typ, want, ErrNotResh)
	}
	return f, nil
}

// resumeState is what a client needs to resume.
type resumeState struct {
	id     sessionID
	secret [secretLen]byte
	rcvNxt uint64
	wnd    uint32 // free receive space, advertised in the HELLO
}

// clientHandshake runs the client side of the handshake on tr: a new session
// when rs is nil, a resume otherwise. On success the returned decoder holds
// whatever the server sent after its WELCOME.
func clientHandshake(tr net.Conn, deadline time.Time, rs *resumeState, wnd uint32, secureAbove bool) (welcome, *decoder, error) {
	_ = tr.SetDeadline(deadline)
	defer tr.SetDeadline(time.Time{})
	d := newDecoder(tr)
	d.strict = true
	f, err := readHandshakeFrame(d, frameServerHello)
	if err != nil {
		var ne net.Error
		if d.total == 0 && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF)) {
			// Not damage: the server never spoke and gave up or we did (a
			// server that is not a resh server, waiting for its client).
			return welcome{}, nil, fmt.Errorf("%w: %w", errSilentServer, err)
		}
		return welcome{}, nil, handshakeErr(err)
	}
	if len(f.payload) != 1+nonceLen {
		if len(f.payload) >= 1 && f.payload[0] != ProtocolVersion {
			return welcome{}, nil, fmt.Errorf("%w: server speaks version %d, we speak %d", ErrVersion, f.payload[0], ProtocolVersion)
		}
		return welcome{}, nil, fmt.Errorf("handshake: %w", errMalformed)
	}
	if f.payload[0] != ProtocolVersion {
		return welcome{}, nil, fmt.Errorf("%w: server speaks version %d, we speak %d", ErrVersion, f.payload[0], ProtocolVersion)
	}
	h := hello{version: ProtocolVersion, kind: kindNew}
	if rs != nil {
		h.kind = kindResume
		h.id = rs.id
		h.rcvNxt = rs.rcvNxt
		h.proof = resumeProof(&rs.secret, f.payload[1:], rs.id, rs.rcvNxt)
		wnd = rs.wnd
	}
	if err := writeFrame(tr, frameHello, 0, wnd, h.append(nil)); err != nil {
		return welcome{}, nil, handshakeErr(err)
	}
	f, err = readHandshakeFrame(d, frameWelcome)
	if err != nil {
		return welcome{}, nil, handshakeErr(err)
	}
	w, err := parseWelcome(f.payload, f.flags)
	if err != nil || w.version != ProtocolVersion || w.kind != h.kind || (rs != nil && w.id != rs.id) {
		return welcome{}, nil, fmt.Errorf("handshake: bad WELCOME: %w", errMalformed)
	}
	if w.kind == kindNew && w.keyAbove != secureAbove {
		if secureAbove {
			return welcome{}, nil, fmt.Errorf("%w: the server runs no security layer above the connection (a reshd -insecure?)", ErrSecurityMismatch)
		}
		return welcome{}, nil, fmt.Errorf("%w: the server runs a security layer (TLS) above the connection", ErrSecurityMismatch)
	}
	w.wnd = f.wnd
	d.strict = false
	return w, d, nil
}

func handshakeErr(err error) error {
	var r *rejectError
	if errors.As(err, &r) {
		return err
	}
	return fmt.Errorf("handshake: %w", err)
}

// reject sends a REJECT and closes tr.
func reject(tr net.Conn, code rejectCode, msg string) {
	_ = writeFrame(tr, frameReject, 0, 0, append([]byte{byte(code)}, msg...))
	tr.Close()
}
