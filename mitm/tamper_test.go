package mitm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
)

// The tests build and check frames with their own encoder, independent of
// tamper.go, following connection/spec.md §1.
var testCRC = crc32.MakeTable(crc32.Castagnoli)

// Frame types of connection/spec.md §2 used by the tests.
const (
	ftServerHello = 1
	ftHello       = 2
	ftWelcome     = 3
	ftData        = 5
	ftAck         = 6
	ftPing        = 7
)

// appendFrame appends a valid frame to b.
func appendFrame(b []byte, typ, flags byte, seq uint64, payload []byte) []byte {
	return appendFrameLen(b, typ, flags, uint32(len(payload)), seq, payload)
}

// appendFrameLen appends a frame whose len field is n, whatever the
// payload: only a header with a valid hcrc when n is not len(payload).
func appendFrameLen(b []byte, typ, flags byte, n uint32, seq uint64, payload []byte) []byte {
	start := len(b)
	b = append(b, 0xB7, 0x1E, typ, flags)
	b = binary.BigEndian.AppendUint32(b, n)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, seq/2) // ack
	b = binary.BigEndian.AppendUint32(b, 1<<20) // wnd
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], testCRC))
	if len(payload) > 0 {
		b = append(b, payload...)
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], testCRC))
	}
	return b
}

// frameOK reports whether f is one whole frame whose CRCs verify.
func frameOK(f []byte) bool {
	if len(f) < 32 || f[0] != 0xB7 || f[1] != 0x1E ||
		crc32.Checksum(f[:28], testCRC) != binary.BigEndian.Uint32(f[28:]) {
		return false
	}
	n := int(binary.BigEndian.Uint32(f[4:]))
	if n == 0 {
		return len(f) == 32
	}
	return len(f) == 36+n && crc32.Checksum(f[:32+n], testCRC) == binary.BigEndian.Uint32(f[32+n:])
}

// span is a part of a test stream: a valid DATA frame with a payload,
// which may be tampered, or anything else, which must pass untouched.
type span struct {
	off, len int
	data     bool
}

// frameStream returns a stream of n random parts after a handshake: DATA
// frames of 1..maxPayload bytes, other frames, garbage, things that look
// like frames but are not, and DATA frames with a bad header or payload
// CRC. If big, a DATA frame of the maximum payload (1 MiB) is in it. The
// stream ends with the first half of a DATA frame.
func frameStream(seed uint64, n, maxPayload int, big bool) ([]byte, []span) {
	r := rand.New(rand.NewPCG(seed, 2))
	var b []byte
	var spans []span
	add := func(data bool, f func()) {
		off := len(b)
		f()
		spans = append(spans, span{off, len(b) - off, data})
	}
	payload := func(n int) []byte { return randomBytes(n, r.Uint64()) }
	var seq uint64
	add(false, func() { b = appendFrame(b, ftServerHello, 0, 0, payload(33)) })
	add(false, func() { b = appendFrame(b, ftHello, 0, 0, []byte{1, 0}) })
	add(false, func() { b = appendFrame(b, ftWelcome, 0, 0, payload(50)) })
	for i := range n {
		if big && i == n/2 {
			add(true, func() { b = appendFrame(b, ftData, 2, seq, payload(frameMaxPayload)) })
			seq += frameMaxPayload
		}
		switch r.IntN(10) {
		case 0, 1, 2, 3:
			p := payload(1 + r.IntN(maxPayload))
			add(true, func() { b = appendFrame(b, ftData, byte(r.IntN(256)), seq, p) })
			seq += uint64(len(p))
		case 4:
			add(false, func() { b = appendFrame(b, ftAck, 0, seq, nil) })
		case 5:
			add(false, func() { b = appendFrame(b, ftPing, 0, seq, nil) })
		case 6: // garbage, with magic bytes in it
			add(false, func() {
				for range r.IntN(100) {
					switch r.IntN(8) {
					case 0:
						b = append(b, 0xB7)
					case 1:
						b = append(b, 0xB7, 0x1E)
					default:
						b = append(b, byte(r.Uint32()))
					}
				}
			})
		case 7: // headers with a valid hcrc but a bad length or type
			add(false, func() {
				switch r.IntN(3) {
				case 0:
					b = appendFrameLen(b, ftData, 0, frameMaxPayload+1, seq, nil)
				case 1:
					b = appendFrameLen(b, 0, 0, 10, seq, nil)
				default:
					b = appendFrameLen(b, 10, 0, 0, seq, nil)
				}
			})
		case 8: // DATA frames with a bad CRC
			add(false, func() {
				start := len(b)
				b = appendFrame(b, ftData, 0, seq, payload(1+r.IntN(maxPayload)))
				if r.IntN(2) == 0 {
					b[start+8] ^= 1 // seq: hcrc fails
				} else {
					b[start+32+r.IntN(len(b)-start-36)] ^= 0x80 // pcrc fails
				}
			})
		case 9: // an empty DATA frame, the end of a stream
			add(false, func() { b = appendFrame(b, ftData, 1, seq, nil) })
		}
	}
	add(false, func() {
		f := appendFrame(nil, ftData, 0, seq, payload(1+r.IntN(maxPayload)))
		b = append(b, f[:len(f)/2]...)
	})
	return b, spans
}

// runTamperer feeds input to a fresh tamperer in chunks of size chunk, then
// flushes it, and returns the output and the bytes it reported tampered.
func runTamperer(p float64, key uint64, input []byte, chunk int) ([]byte, []report) {
	var reps []report
	t := newTamperer(key, 0, p, func(kind int, off int64, n int) {
		reps = append(reps, report{kind, off, n})
	})
	var out []byte
	for len(input) > 0 {
		n := min(chunk, len(input))
		out = t.process(out, input[:n])
		input = input[n:]
	}
	return t.flush(out), reps
}

// checkTampered checks out, a tamperer's output for the stream in made of
// spans, and the faults it reported: everything but the payloads of DATA
// frames is unchanged, every DATA frame still verifies, and the bytes that
// differ are the ones reported. It returns how many differ.
func checkTampered(t *testing.T, in, out []byte, spans []span, reps []report) int {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("output of %d bytes for %d", len(out), len(in))
	}
	var diffs []int64
	for _, s := range spans {
		i, o := in[s.off:s.off+s.len], out[s.off:s.off+s.len]
		if !s.data {
			if !bytes.Equal(i, o) {
				t.Fatalf("a part that is not a DATA frame changed, at %d (%d bytes)", s.off, s.len)
			}
			continue
		}
		if !bytes.Equal(i[:32], o[:32]) {
			t.Fatalf("the header of the DATA frame at %d changed", s.off)
		}
		if !frameOK(o) {
			t.Fatalf("the DATA frame at %d no longer verifies", s.off)
		}
		for k := 32; k < len(i)-4; k++ {
			if i[k] != o[k] {
				diffs = append(diffs, int64(s.off+k))
			}
		}
	}
	if len(reps) != len(diffs) {
		t.Fatalf("%d bytes differ, %d reported", len(diffs), len(reps))
	}
	for j, r := range reps {
		if r.kind != kindTamper || r.n != 1 || r.off != diffs[j] {
			t.Fatalf("report %d is %+v; byte %d differs", j, r, diffs[j])
		}
	}
	return len(diffs)
}

// TestTamper checks a stream of frames, garbage and broken frames: payload
// bytes of DATA frames are replaced at the rate asked, every frame still
// verifies, the rest is untouched, and the chunk size does not matter.
func TestTamper(t *testing.T) {
	in, spans := frameStream(1, 60, 128<<10, true)
	const p = 0.002
	const key = 0x5678
	out, reps := runTamperer(p, key, in, 64<<10)
	n := checkTampered(t, in, out, spans, reps)
	payload := 0
	for _, s := range spans {
		if s.data {
			payload += s.len - 36
		}
	}
	if want := p * float64(payload); float64(n) < 0.8*want || float64(n) > 1.2*want {
		t.Fatalf("%d bytes tampered, want about %.0f", n, want)
	}
	for _, chunk := range []int{1000, 1<<20 + 7, len(in)} {
		if o, r := runTamperer(p, key, in, chunk); !bytes.Equal(o, out) || len(r) != len(reps) {
			t.Fatalf("chunks of %d: output differs from chunks of 64 KiB", chunk)
		}
	}
	for b := range 256 {
		if tamperByte(5, int64(b), byte(b)) == byte(b) {
			t.Fatal("a tampered byte kept its value")
		}
	}
}

// TestTamperAll tampers every payload byte.
func TestTamperAll(t *testing.T) {
	in, spans := frameStream(2, 40, 3000, false)
	out, reps := runTamperer(1, 9, in, 4096)
	n := checkTampered(t, in, out, spans, reps)
	payload := 0
	for _, s := range spans {
		if s.data {
			payload += s.len - 36
		}
	}
	if n != payload {
		t.Fatalf("%d of %d payload bytes tampered", n, payload)
	}
}

// TestTamperOff checks that a tamperer with probability 0 is a byte-exact
// passthrough.
func TestTamperOff(t *testing.T) {
	in, _ := frameStream(3, 60, 128<<10, true)
	if out, reps := runTamperer(0, 9, in, 50000); !bytes.Equal(out, in) || len(reps) != 0 {
		t.Fatalf("probability 0 changed the data (%d faults)", len(reps))
	}
}

// TestTamperSplits splits a stream in two at every offset: the output and
// the faults are always the same, and so they are a byte at a time.
func TestTamperSplits(t *testing.T) {
	in, spans := frameStream(4, 40, 200, false)
	const p = 0.05
	const key = 11
	out, reps := runTamperer(p, key, in, len(in))
	if checkTampered(t, in, out, spans, reps) == 0 {
		t.Fatal("nothing tampered")
	}
	for i := range len(in) {
		var got []report
		tp := newTamperer(key, 0, p, func(kind int, off int64, n int) {
			got = append(got, report{kind, off, n})
		})
		o := tp.process(nil, in[:i])
		o = tp.flush(tp.process(o, in[i:]))
		if !bytes.Equal(o, out) || len(got) != len(reps) {
			t.Fatalf("split at %d: output differs", i)
		}
	}
	if o, r := runTamperer(p, key, in, 1); !bytes.Equal(o, out) || len(r) != len(reps) {
		t.Fatal("a byte at a time: output differs")
	}
}

// TestTamperStreams checks what is held: only the start of a header and a
// DATA frame until its pcrc; garbage and other frames pass at once.
func TestTamperStreams(t *testing.T) {
	tp := newTamperer(1, 0, 1, nil)
	garbage := []byte("garbage\xb7 and more")
	hello := appendFrame(nil, ftServerHello, 0, 0, randomBytes(33, 1))
	data := appendFrame(nil, ftData, 0, 0, randomBytes(1000, 2))
	steps := []struct {
		in   []byte
		want int // output bytes
	}{
		{garbage, len(garbage)},
		{hello[:10], 0}, // maybe a header
		{hello[10:40], 40},
		{hello[40:], len(hello) - 40},
		{data[:500], 0},
		{data[500 : len(data)-1], 0},
		{data[len(data)-1:], len(data)},
		{[]byte{0xB7}, 0},
		{[]byte{0x1F}, 2},
		{data[:100], 0},
	}
	for i, s := range steps {
		if out := tp.process(nil, s.in); len(out) != s.want {
			t.Fatalf("step %d: %d bytes out, want %d", i, len(out), s.want)
		}
	}
	if out := tp.flush(nil); !bytes.Equal(out, data[:100]) {
		t.Fatal("flush did not release the held bytes untouched")
	}
}

// TestTamperProxy sends frames through a real proxy to an echo server,
// tampering on the way up only: the client gets back exactly what the
// offline tamperer computes for the same seed, the log lists the same
// bytes, and every frame still verifies.
func TestTamperProxy(t *testing.T) {
	srv := startServer(t, echo)
	var log syncBuffer
	p := startProxy(t, Config{Target: srv, Seed: 31, Up: Faults{Tamper: 0.001}, Log: &log})
	in, spans := frameStream(5, 50, 128<<10, true)
	want, reps := runTamperer(0.001, streamKey(31, 1, dirUp), in, 1<<20)
	if checkTampered(t, in, want, spans, reps) == 0 {
		t.Fatal("the model tampered nothing")
	}
	c := dial(t, p.Addr().String())
	go func() {
		r := rand.New(rand.NewPCG(5, 5))
		for b := in; len(b) > 0; {
			n := min(1+r.IntN(200<<10), len(b))
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, the model gives %d", len(got), len(want))
	}
	c.Close()
	p.Close()
	var offs []int64
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		var l faultLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Kind == "tamper" {
			if l.Conn != 1 || l.Dir != "up" || l.Len != 1 {
				t.Fatalf("bad line %s", sc.Text())
			}
			offs = append(offs, l.Offset)
		}
	}
	s := p.Stats()
	if len(offs) != len(reps) || s.Up.Tamper != int64(len(reps)) || s.Down.Tamper != 0 ||
		s.Up.Out != int64(len(in)) || s.Down.Out != int64(len(in)) {
		t.Fatalf("log has %d tamper lines, stats %+v, model %d", len(offs), s, len(reps))
	}
	for i, r := range reps {
		if offs[i] != r.off {
			t.Fatalf("log line %d at %d, model at %d", i, offs[i], r.off)
		}
	}
}

// TestTamperThenMangle checks the order of the pipeline without sockets:
// the mangler gets the tamperer's output, at the same offsets.
func TestTamperThenMangle(t *testing.T) {
	in, _ := frameStream(6, 30, 20000, false)
	f := Faults{Tamper: 0.01, Corrupt: 0.001, Cut: 0.0005, Inject: 0.0005}
	key := streamKey(41, 1, dirUp)
	tampered, _ := runTamperer(f.Tamper, key, in, len(in))
	want, _ := runMangler(Faults{Corrupt: f.Corrupt, Cut: f.Cut, Inject: f.Inject}, key, tampered, len(in))
	got := make(chan []byte, 1)
	_, dial := pipeProxy(t, Config{Seed: 41, Up: f}, func(c net.Conn) {
		b := make([]byte, len(want))
		io.ReadFull(c, b)
		got <- b
	})
	c := dial()
	go func() {
		for b := in; len(b) > 0; {
			n := min(3000, len(b))
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		c.Close() // EOF: the proxy releases what it holds
	}()
	if !bytes.Equal(recv(t, got), want) {
		t.Fatal("the target did not get the model's output")
	}
}

// TestTamperSwitchOff switches Tamper off while a DATA frame is held: the
// held bytes are delivered untouched, none lost.
func TestTamperSwitchOff(t *testing.T) {
	first := appendFrame(nil, ftData, 0, 0, randomBytes(1000, 7))
	second := appendFrame(nil, ftData, 0, 1000, randomBytes(1000, 8))
	got := make(chan []byte, 2)
	p, dial := pipeProxy(t, Config{Up: Faults{Tamper: 1}}, func(c net.Conn) {
		for _, n := range []int{len(first), len(second)} {
			b := make([]byte, n)
			io.ReadFull(c, b)
			got <- b
		}
	})
	c := dial()
	write := func(b []byte) {
		t.Helper()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(first)
	b := recv(t, got)
	if !frameOK(b) || !bytes.Equal(b[:32], first[:32]) || bytes.Equal(b[32:1032], first[32:1032]) {
		t.Fatal("the first frame was not tampered as expected")
	}
	// Each write over a pipe returns once the proxy has read it, and it
	// reads again only once the previous chunk is processed: after the
	// second write, the first half of the frame is held.
	write(second[:500])
	write(second[500:501])
	p.SetFaults(Faults{}, Faults{})
	write(second[501:])
	if b := recv(t, got); !bytes.Equal(b, second) {
		t.Fatal("the second frame did not pass untouched")
	}
	if s := p.Stats(); s.Up.Tamper != 1000 {
		t.Fatalf("stats %+v", s.Up)
	}
}

// FuzzTamper checks that any input, in any two pieces, gives output of the
// same length and the same output as in one piece.
func FuzzTamper(f *testing.F) {
	small, _ := frameStream(7, 8, 40, false)
	f.Add(small, uint16(100), uint8(128))
	f.Add(appendFrame(nil, ftData, 0, 0, []byte("x")), uint16(3), uint8(255))
	f.Add([]byte("\xb7\x1e\xb7\xb7\x1e"), uint16(1), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint16, rate uint8) {
		p := float64(rate) / 255
		whole, reps := runTamperer(p, 3, in, len(in)+1)
		if len(whole) != len(in) {
			t.Fatalf("output of %d bytes for %d", len(whole), len(in))
		}
		if p == 0 && !bytes.Equal(whole, in) {
			t.Fatal("probability 0 changed the data")
		}
		for _, r := range reps {
			if r.off < 0 || r.off >= int64(len(in)) || in[r.off] == whole[r.off] {
				t.Fatalf("bad report %+v", r)
			}
		}
		if o, _ := runTamperer(p, 3, in, 1+int(split)); !bytes.Equal(o, whole) {
			t.Fatalf("chunks of %d: output differs", 1+int(split))
		}
	})
}

// BenchmarkTamperer measures the tamperer on 128 KiB DATA frames, without
// sockets.
func BenchmarkTamperer(b *testing.B) {
	var in []byte
	for i := range 8 {
		in = appendFrame(in, ftData, 0, uint64(i)<<17, randomBytes(128<<10, uint64(i)))
	}
	for _, p := range []float64{1e-6, 1e-3} {
		b.Run(fmt.Sprintf("p=%g", p), func(b *testing.B) {
			tp := newTamperer(1, 0, p, nil)
			out := make([]byte, 0, len(in)+64<<10)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				for c := in; len(c) > 0; c = c[min(64<<10, len(c)):] {
					out = tp.process(out[:0], c[:min(64<<10, len(c))])
				}
			}
		})
	}
}
