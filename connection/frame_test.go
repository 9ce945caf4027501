package connection

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       header
		payload []byte
	}{
		{"ack", header{typ: frameAck, ack: 42, wnd: 1 << 18}, nil},
		{"nak", header{typ: frameAck, flags: flagNak | 3<<1, ack: 7}, nil},
		{"data", header{typ: frameData, seq: 1 << 40, ack: 9, wnd: 100}, []byte("hello")},
		{"data fin", header{typ: frameData, flags: flagFin, seq: 5}, []byte{0}},
		{"empty fin", header{typ: frameData, flags: flagFin, seq: 5}, nil},
		{"max payload", header{typ: frameData}, make([]byte, maxPayload)},
		{"hello", header{typ: frameHello, wnd: 4}, []byte{ProtocolVersion, kindNew}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendFrame([]byte("prefix"), tc.h, tc.payload)[6:]
			if len(b) != frameLen(len(tc.payload)) {
				t.Fatalf("encoded %d bytes, frameLen says %d", len(b), frameLen(len(tc.payload)))
			}
			f, n, err := parseFrame(append(b, 0xff, 0xfe))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Fatalf("used %d bytes, want %d", n, len(b))
			}
			want := tc.h
			want.len = uint32(len(tc.payload))
			if f.header != want || !bytes.Equal(f.payload, tc.payload) {
				t.Fatalf("got %+v, want %+v", f.header, want)
			}
		})
	}
}

// Every truncated prefix of a frame is reported as incomplete, never as a
// frame or a panic.
func TestFrameTruncatedPrefixes(t *testing.T) {
	b := appendFrame(nil, header{typ: frameData, seq: 3, ack: 4, wnd: 5}, []byte("some payload"))
	for i := range len(b) {
		_, n, err := parseFrame(b[:i])
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		if !errors.Is(err, want) || n != 0 {
			t.Fatalf("prefix of %d bytes: n=%d err=%v, want %v", i, n, err, want)
		}
	}
}

// reseal recomputes the header checksum after a test changed a field, so
// that a check behind it can be reached.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], castagnoli))
	return b
}

func TestFrameRejects(t *testing.T) {
	good := appendFrame(nil, header{typ: frameData, seq: 1}, []byte("abc"))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"bad magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), errBadMagic},
		{"bad second magic byte", mut(func(b []byte) []byte { b[1] = 'X'; return b }), errBadMagic},
		{"replaced header byte", mut(func(b []byte) []byte { b[9] ^= 1; return b }), errHeaderCRC},
		{"replaced checksum", mut(func(b []byte) []byte { b[30] ^= 0x80; return b }), errHeaderCRC},
		{"replaced payload byte", mut(func(b []byte) []byte { b[headerLen+1] ^= 0x55; return b }), errPayloadCRC},
		{"replaced payload checksum", mut(func(b []byte) []byte { b[len(b)-1]++; return b }), errPayloadCRC},
		{"removed payload byte", mut(func(b []byte) []byte { return append(b[:headerLen+1], b[headerLen+2:]...) }), io.ErrUnexpectedEOF},
		{"oversized length", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[4:8], maxPayload+1)
			return reseal(b)
		}), errTooLong},
		{"huge length", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[4:8], 0xffffffff)
			return reseal(b)
		}), errTooLong},
		{"unknown type", mut(func(b []byte) []byte { b[2] = 200; return reseal(b) }), errFrameType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := parseFrame(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// oneByteReader returns one byte per Read, the worst segmentation.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// The decoder skips garbage, replaced and removed bytes, and returns every
// intact frame after them, whatever the read sizes.
func TestDecoderResynchronises(t *testing.T) {
	var stream []byte
	var want [][]byte
	add := func(p string) []byte {
		f := appendFrame(nil, header{typ: frameData, seq: uint64(len(want))}, []byte(p))
		return f
	}
	intact := func(p string) {
		stream = append(stream, add(p)...)
		want = append(want, []byte(p))
	}
	intact("first")
	stream = append(stream, "garbage \xb7 \xb7\x1e more garbage"...) // includes false magics
	intact("second")
	f := add("replaced")
	f[headerLen+2] ^= 0xff
	stream = append(stream, f...)
	intact("third")
	f = add("removed bytes")
	stream = append(stream, append(f[:headerLen+3], f[headerLen+6:]...)...)
	intact("fourth")
	f = add("header cut")
	stream = append(stream, f[:10]...)
	intact("fifth")
	for _, r := range []func([]byte) io.Reader{
		func(b []byte) io.Reader { return bytes.NewReader(b) },
		func(b []byte) io.Reader { return oneByteReader{bytes.NewReader(b)} },
	} {
		d := newDecoder(r(stream))
		var got [][]byte
		for {
			f, err := d.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, bytes.Clone(f.payload))
		}
		if len(got) != len(want) {
			t.Fatalf("got %d frames %q, want %d %q", len(got), got, len(want), want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %q, want %q", i, got[i], want[i])
			}
		}
		if d.skipped == 0 || d.damaged == 0 {
			t.Fatalf("skipped %d, damaged %d: damage not counted", d.skipped, d.damaged)
		}
	}
}

// A header claiming a huge length, with a valid checksum, must not make the
// decoder allocate or wait for that many bytes.
func TestDecoderOversizedLengthDoesNotAllocate(t *testing.T) {
	h := make([]byte, headerLen)
	h[0], h[1], h[2] = magic0, magic1, byte(frameData)
	binary.BigEndian.PutUint32(h[4:8], 0xfffffff0)
	reseal(h)
	good := appendFrame(nil, header{typ: frameAck, ack: 1}, nil)
	stream := append(h, good...)
	d := newDecoder(bytes.NewReader(stream))
	f, err := d.next()
	if err != nil || f.typ != frameAck {
		t.Fatalf("got %v %v, want the ACK after the oversized header", f.typ, err)
	}
	if len(d.buf) > decoderMinBuf {
		t.Fatalf("decoder grew to %d bytes", len(d.buf))
	}
}

// In strict mode (the handshake) any damage is an error at once.
func TestDecoderStrict(t *testing.T) {
	d := newDecoder(bytes.NewReader([]byte("SSH-2.0-OpenSSH_9.6\r\n")))
	d.strict = true
	if _, err := d.next(); !errors.Is(err, ErrNotResh) {
		t.Fatalf("err %v, want ErrNotResh", err)
	}
}

// Decoding a steady stream of frames allocates nothing.
func TestDecoderZeroAlloc(t *testing.T) {
	frame := appendFrame(nil, header{typ: frameData}, make([]byte, 1000))
	r := &loopReader{b: frame}
	d := newDecoder(r)
	if _, err := d.next(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := d.next(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}

// loopReader repeats b forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func FuzzDecoder(f *testing.F) {
	f.Add(appendFrame(nil, header{typ: frameData, seq: 1}, []byte("abc")))
	f.Add(append(appendFrame(nil, header{typ: frameAck}, nil), 0xb7, 0x1e, 0, 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDecoder(bytes.NewReader(b))
		consumed := 0
		for {
			fr, err := d.next()
			if err != nil {
				return
			}
			// Every frame returned re-encodes to a frame that parses the same.
			again := appendFrame(nil, fr.header, fr.payload)
			g, n, err := parseFrame(again)
			if err != nil || n != len(again) || g.header != fr.header || !bytes.Equal(g.payload, fr.payload) {
				t.Fatalf("re-encoded frame does not round-trip: %v", err)
			}
			consumed += n
			if consumed > len(b) {
				t.Fatalf("decoded %d bytes of frames from %d bytes of input", consumed, len(b))
			}
		}
	})
}

// FuzzFrameRoundTrip's bounds. Inputs with a longer payload are skipped:
// the minimizer's last pass tries every subset of a payload's bytes, one
// run each, so minimizing an interesting kilobyte held the fuzzer at 0
// execs/s for its whole minimizing time (60s); and flipping every payload
// byte cost one copy and one CRC per byte. The payload's bytes reach only
// the CRC, and the table tests cover the longest payload.
const (
	fuzzMaxPayload = 256
	fuzzFlips      = 64 // payload bits flipped, beside every header and trailer bit
)

func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(byte(frameData), byte(1), uint64(2), uint64(3), uint32(4), []byte("x"))
	f.Fuzz(func(t *testing.T, typ, flags byte, seq, ack uint64, wnd uint32, payload []byte) {
		if typ < byte(frameServerHello) || typ > byte(frameCloseAck) || len(payload) > fuzzMaxPayload {
			return
		}
		h := header{typ: frameType(typ), flags: flags, seq: seq, ack: ack, wnd: wnd, len: uint32(len(payload))}
		b := appendFrame(nil, h, payload)
		g, n, err := parseFrame(b)
		if err != nil || n != len(b) || g.header != h || !bytes.Equal(g.payload, payload) {
			t.Fatalf("round trip: %+v %v", g.header, err)
		}
		// Flipping any single bit is detected: every bit of the header and
		// the trailer, and fuzzFlips bits of the payload, spread over it
		// from a seed the input gives. The flip is undone in place, so the
		// frame is never copied.
		flip := func(bit int) {
			b[bit/8] ^= 1 << (bit % 8)
			_, _, err := parseFrame(b)
			b[bit/8] ^= 1 << (bit % 8)
			if err == nil {
				t.Fatalf("bit flip at byte %d, bit %d not detected", bit/8, bit%8)
			}
		}
		for bit := range 8 * headerLen {
			flip(bit)
		}
		if len(payload) == 0 {
			return
		}
		for bit := 8 * (len(b) - trailerLen); bit < 8*len(b); bit++ {
			flip(bit)
		}
		rng := rand.New(rand.NewPCG(seq^uint64(len(payload)), ack^uint64(wnd)))
		payloadBits := 8 * len(payload)
		for range min(fuzzFlips, payloadBits) {
			flip(8*headerLen + rng.IntN(payloadBits))
		}
	})
}

func FuzzHandshakePayloads(f *testing.F) {
	f.Add([]byte{ProtocolVersion, kindNew})
	f.Add(append([]byte{ProtocolVersion, kindResume}, make([]byte, idLen+8+proofLen)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parseHello(b); err == nil && h.version == ProtocolVersion {
			if got := h.append(nil); !bytes.Equal(got, b) {
				t.Fatalf("hello does not round-trip")
			}
		}
		for _, flags := range []byte{0, flagKeyAbove} {
			if w, err := parseWelcome(b, flags); err == nil {
				if got := w.append(nil); !bytes.Equal(got, b) {
					t.Fatalf("welcome (flags %#x) does not round-trip", flags)
				}
				if w.kind == kindNew && w.flags() != flags {
					t.Fatalf("welcome flags %#x parsed as %#x", flags, w.flags())
				}
			}
		}
	})
}
