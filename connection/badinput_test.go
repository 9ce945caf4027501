package connection

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// rawServer accepts one TCP connection and runs f on it.
func rawServer(t *testing.T, f func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f(c)
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

func dialQuick(addr string, cfg *Config) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cfg == nil {
		cfg = fastConfig()
	}
	cfg.DialAttempts = 1
	return Dial(ctx, "tcp", addr, cfg)
}

func TestDialGarbageServer(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
		_, _ = io.Copy(io.Discard, c)
	})
	_, err := dialQuick(addr, nil)
	if !errors.Is(err, ErrNotResh) {
		t.Fatalf("dial: %v, want ErrNotResh", err)
	}
}

func TestDialSilentServerTimesOut(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	cfg := fastConfig()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	cfg.DialAttempts = 3
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, "tcp", addr, cfg)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, errSilentServer) {
		t.Fatalf("dial: %v, want a timeout saying the server sent nothing", err)
	}
	// Silence is not damage: no second attempt.
	if el := time.Since(start); el > 2*cfg.HandshakeTimeout {
		t.Fatalf("dial took %v: it retried a silent server", el)
	}
}

func TestDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := dialQuick(addr, nil); err == nil {
		t.Fatal("dial of a closed port succeeded")
	}
}

func TestClientVersionMismatch(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		_ = writeFrame(c, frameServerHello, 0, 0, append([]byte{ProtocolVersion + 1}, make([]byte, nonceLen)...))
		_, _ = io.Copy(io.Discard, c)
	})
	_, err := dialQuick(addr, nil)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("dial: %v, want ErrVersion", err)
	}
}

// rawHello talks to a real Server by hand: reads its hello, sends payload
// as a HELLO, and returns the answer frame.
func rawHello(t *testing.T, srv *Server, payload func(nonce []byte) []byte) frame {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	d := newDecoder(c)
	f, err := d.next()
	if err != nil || f.typ != frameServerHello {
		t.Fatalf("server hello: %v %v", f.typ, err)
	}
	if err := writeFrame(c, frameHello, 0, 0, payload(bytes.Clone(f.payload[1:]))); err != nil {
		t.Fatal(err)
	}
	f, err = d.next()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	f.payload = bytes.Clone(f.payload)
	return f
}

func TestServerRefusals(t *testing.T) {
	srv, cl, _ := pair(t, fastConfig())
	for _, tc := range []struct {
		name    string
		payload func(nonce []byte) []byte
		want    error
	}{
		{"version", func([]byte) []byte { return []byte{ProtocolVersion + 1, kindNew} }, ErrVersion},
		{"malformed", func([]byte) []byte { return []byte{ProtocolVersion, 9} }, ErrProtocol},
		{"unknown session", func(nonce []byte) []byte {
			h := hello{version: ProtocolVersion, kind: kindResume, id: sessionID{1, 2, 3}}
			return h.append(nil)
		}, ErrUnknownSession},
		{"wrong secret", func(nonce []byte) []byte {
			var wrong [secretLen]byte
			h := hello{version: ProtocolVersion, kind: kindResume, id: cl.id}
			h.proof = resumeProof(&wrong, nonce, cl.id, 0)
			return h.append(nil)
		}, ErrBadSecret},
		{"replayed proof", func(nonce []byte) []byte {
			// A proof made for another transport's nonce is useless.
			h := hello{version: ProtocolVersion, kind: kindResume, id: cl.id}
			h.proof = resumeProof(&cl.secret, make([]byte, nonceLen), cl.id, 0)
			return h.append(nil)
		}, ErrBadSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := rawHello(t, srv, tc.payload)
			if f.typ != frameReject {
				t.Fatalf("answer %v, want REJECT", f.typ)
			}
			err := error(&rejectError{code: rejectCode(f.payload[0]), msg: string(f.payload[1:])})
			if !errors.Is(err, tc.want) {
				t.Fatalf("refusal %v, want %v", err, tc.want)
			}
		})
	}
	// The real session is untouched by the failed attempts.
	if _, err := cl.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
}

// Garbage, a silent client and a huge length aimed at the server: each
// transport is dropped, no session appears, and a real client still gets in.
func TestServerSurvivesGarbage(t *testing.T) {
	cfg := fastConfig()
	cfg.HandshakeTimeout = 300 * time.Millisecond
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	huge := make([]byte, headerLen)
	huge[0], huge[1], huge[2] = magic0, magic1, byte(frameHello)
	huge[4], huge[5], huge[6], huge[7] = 0xff, 0xff, 0xff, 0xff
	reseal(huge)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		bytes.Repeat([]byte{0xb7, 0x1e}, 1000),
		huge,
		nil, // silent
	} {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// The server drops the transport: we read its hello, then EOF.
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("server did not close a garbage transport: %v", err)
		}
		c.Close()
	}
	cl, err := dialQuick(srv.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, cl, acc, []byte("works"), 5*time.Second)
	cl.Close()
	acc.Close()
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []*Config{
		{WindowSize: -1},
		{MaxFrameSize: maxPayload + 1},
		{HeartbeatInterval: time.Second, DeadTimeout: time.Millisecond},
	} {
		if _, err := Listen("tcp", "127.0.0.1:0", cfg); err == nil {
			t.Errorf("Listen accepted %+v", cfg)
		}
		if _, err := Dial(context.Background(), "tcp", "127.0.0.1:1", cfg); err == nil {
			t.Errorf("Dial accepted %+v", cfg)
		}
	}
}

func TestAcceptAfterClose(t *testing.T) {
	srv, err := Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := srv.Accept(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("accept after close: %v", err)
	}
}
