package connection

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingDialer dials TCP and keeps a copy of every byte the client
// received, as a passive observer on the path would.
type recordingDialer struct {
	mu   sync.Mutex
	seen bytes.Buffer
}

type recordingConn struct {
	net.Conn
	d *recordingDialer
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.d.mu.Lock()
	c.d.seen.Write(p[:n])
	c.d.mu.Unlock()
	return n, err
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return recordingConn{Conn: c, d: d}, nil
}

// observedWelcome parses the first WELCOME a passive observer saw.
func (d *recordingDialer) observedWelcome(t *testing.T) (welcome, frame) {
	t.Helper()
	d.mu.Lock()
	seen := bytes.Clone(d.seen.Bytes())
	d.mu.Unlock()
	dec := newDecoder(bytes.NewReader(seen))
	for {
		f, err := dec.next()
		if err != nil {
			t.Fatalf("no WELCOME in what the observer saw: %v", err)
		}
		if f.typ == frameWelcome {
			w, err := parseWelcome(f.payload, f.flags)
			if err != nil {
				t.Fatal(err)
			}
			return w, f
		}
	}
}

// keyedPair is a pair secured from above, keyed with the same random key on
// both sides as a TLS exporter would give them, its client's traffic
// recorded.
func keyedPair(t *testing.T, key bool) (*Server, *Client, *Accepted, *recordingDialer) {
	t.Helper()
	rec := &recordingDialer{}
	scfg := fastConfig()
	scfg.SecureAbove = true
	ccfg := *scfg
	ccfg.Dial = rec.dial
	srv, cl, acc := pairWith(t, scfg, &ccfg)
	if key {
		k := randomBytesN(ResumeKeySize, 7)
		if err := cl.SetResumeKey(k); err != nil {
			t.Fatal(err)
		}
		if err := acc.SetResumeKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return srv, cl, acc, rec
}

// A session secured from above sends no secret in its handshake: a
// stranger who saw all of it cannot resume the session, before or after
// the key is installed, and the real session goes on.
func TestStrangerWhoSawTheHandshakeCannotResume(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		name := map[bool]string{false: "before the key", true: "after the key"}[keyed]
		t.Run(name, func(t *testing.T) {
			srv, cl, acc, rec := keyedPair(t, keyed)
			w, f := rec.observedWelcome(t)
			if !w.keyAbove || len(f.payload) != 2+idLen {
				t.Fatalf("WELCOME carries %d bytes (flags %#x): want the id alone", len(f.payload), f.flags)
			}
			if w.id != cl.id {
				t.Fatalf("observer parsed id %v, session is %v", w.id, cl.id)
			}
			// Everything the observer holds, tried as a key: nothing it
			// saw (the zero secret a WELCOME without one leaves, the id,
			// the recorded bytes) proves the resume.
			rec.mu.Lock()
			seen := bytes.Clone(rec.seen.Bytes())
			rec.mu.Unlock()
			var guesses [][secretLen]byte
			guesses = append(guesses, [secretLen]byte{}, w.secret)
			var g [secretLen]byte
			copy(g[:], w.id[:])
			guesses = append(guesses, g)
			for i := 0; i+secretLen <= len(seen); i += secretLen {
				copy(g[:], seen[i:])
				guesses = append(guesses, g)
			}
			for _, guess := range guesses {
				reply := rawHello(t, srv, func(nonce []byte) []byte {
					h := hello{version: ProtocolVersion, kind: kindResume, id: w.id}
					h.proof = resumeProof(&guess, nonce, w.id, 0)
					return h.append(nil)
				})
				if reply.typ != frameReject || rejectCode(reply.payload[0]) != rejectSecret {
					t.Fatalf("stranger's resume answered %v %v, want REJECT %d", reply.typ, reply.payload, rejectSecret)
				}
			}
			// The real session never noticed.
			transfer(t, cl, acc, []byte("still ours"), 5*time.Second)
		})
	}
}

// Once keyed, a session secured from above resumes like any other.
func TestKeyedSessionResumes(t *testing.T) {
	d := &faultyDialer{plan: func(int) faults { return clean() }}
	scfg := fastConfig()
	scfg.SecureAbove = true
	srv, cl, acc := pairWith(t, scfg, withDialer(scfg, d))
	_ = srv
	k := randomBytesN(ResumeKeySize, 9)
	for _, p := range []*Connection{cl.Connection, acc.Connection} {
		if err := p.SetResumeKey(k); err != nil {
			t.Fatal(err)
		}
	}
	data := randomBytesN(1<<20, 3)
	errc := make(chan error, 1)
	go func() { errc <- transferErr(cl, acc, data, 20*time.Second) }()
	for i := 0; i < 3; i++ {
		waitFor(t, func() bool { return acc.Stats().BytesReceived > uint64(i+1)<<18 }, 10*time.Second)
		d.killCurrent()
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := d.dials(); n < 2 {
		t.Fatalf("%d transports: the kills did not force a resume", n)
	}
}

// Before its key is installed, a session secured from above cannot resume:
// losing the transport ends it on both sides with ErrNotKeyed.
func TestUnkeyedSessionEndsWithItsTransport(t *testing.T) {
	d := &faultyDialer{plan: func(int) faults { return clean() }}
	scfg := fastConfig()
	scfg.SecureAbove = true
	_, cl, acc := pairWith(t, scfg, withDialer(scfg, d))
	d.killCurrent()
	for _, p := range []Peer{cl, acc} {
		_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := p.Read(make([]byte, 1))
		if !errors.Is(err, ErrNotKeyed) {
			t.Fatalf("read after the transport was lost: %v, want ErrNotKeyed", err)
		}
	}
	if err := cl.SetResumeKey(make([]byte, ResumeKeySize)); !errors.Is(err, ErrNotKeyed) {
		t.Fatalf("SetResumeKey on an ended session: %v", err)
	}
	if d.dials() != 1 {
		t.Fatalf("the client redialled %d times an unresumable session", d.dials()-1)
	}
}

func TestSetResumeKeyMisuse(t *testing.T) {
	_, plain, _ := pair(t, fastConfig())
	if err := plain.SetResumeKey(make([]byte, ResumeKeySize)); err == nil {
		t.Fatal("SetResumeKey accepted on a session keyed by its own handshake")
	}
	_, cl, _, _ := keyedPair(t, false)
	if err := cl.SetResumeKey(make([]byte, 5)); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
	if err := cl.SetResumeKey(make([]byte, ResumeKeySize)); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetResumeKey(make([]byte, ResumeKeySize)); err == nil {
		t.Fatal("a second key replaced the first")
	}
}

// A client and a server that disagree on the layer above fail the dial at
// once, with an error that says which side has it.
func TestSecurityMismatch(t *testing.T) {
	for _, serverAbove := range []bool{false, true} {
		scfg := fastConfig()
		scfg.SecureAbove = serverAbove
		srv, err := Listen("tcp", "127.0.0.1:0", scfg)
		if err != nil {
			t.Fatal(err)
		}
		ccfg := fastConfig()
		ccfg.SecureAbove = !serverAbove
		start := time.Now()
		cl, err := Dial(context.Background(), "tcp", srv.Addr().String(), ccfg)
		if err == nil {
			cl.abort()
			t.Fatal("dial succeeded across a security mismatch")
		}
		if !errors.Is(err, ErrSecurityMismatch) {
			t.Fatalf("server above=%v: %v, want ErrSecurityMismatch", serverAbove, err)
		}
		if time.Since(start) > ccfg.HandshakeTimeout {
			t.Fatalf("mismatch took %v to report", time.Since(start))
		}
		srv.Close()
	}
}

// A resume advertises the window really free: bytes the receiver holds
// unread are not offered again, so the sender does not overrun it and
// nothing has to be resent after the resume.
func TestResumeAdvertisesFreeWindow(t *testing.T) {
	d := &faultyDialer{plan: func(int) faults { return clean() }}
	gate := make(chan struct{})
	cfg := fastConfig()
	cfg.RecvBuffer = 64 << 10
	cfg.MaxFrameSize = 8 << 10 // SendBuffer: 4 frames, 32 KiB
	ccfg := withDialer(cfg, d)
	ccfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if d.dials() > 0 {
			<-gate // hold the resume until data waits to be sent
		}
		return d.dial(ctx, network, addr)
	}
	_, cl, acc := pairWith(t, cfg, ccfg)
	first := randomBytesN(48<<10, 1)
	if _, err := cl.Write(first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.sndUna == uint64(len(first))
	}, 5*time.Second)
	d.killCurrent()
	waitFor(t, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.att == nil
	}, 5*time.Second)
	// 32 KiB wait in the send buffer; the server holds 48 KiB unread of
	// its 64, so only 16 KiB may go before it reads.
	second := randomBytesN(32<<10, 2)
	if _, err := cl.Write(second); err != nil {
		t.Fatal(err)
	}
	before := cl.Stats().Retransmits
	close(gate)
	waitFor(t, func() bool { return cl.Stats().Resumes == 1 }, 5*time.Second)
	waitFor(t, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.sndUna >= uint64(len(first))+16<<10
	}, 5*time.Second)
	got := make([]byte, len(first)+len(second))
	_ = acc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(acc, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(first, second...)) {
		t.Fatal("bytes differ after the resume")
	}
	if r := cl.Stats().Retransmits - before; r != 0 {
		t.Fatalf("%d frames resent after the resume: the window offered more than was free", r)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, cond func() bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(time.Millisecond)
	}
}

// A path attacker can forge frames whose CRCs hold. Those the connection
// can tell from honest ones end the session with ErrProtocol rather than
// hang it or shift the stream: an acknowledgement that goes back (an
// earlier one was forged and dropped bytes the peer never got), and data
// after the end of the stream (a forged FIN).
func TestForgedFramesEndTheSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *Connection)
		f     frame
	}{
		{"ack going back", func(c *Connection) { c.sndUna, c.sndNxt, c.sndMax, c.sEnd = 100, 200, 200, 200 },
			frame{header: header{typ: frameAck, ack: 50}}},
		{"nak going back", func(c *Connection) { c.sndUna, c.sndNxt, c.sndMax, c.sEnd = 100, 200, 200, 200 },
			frame{header: header{typ: frameAck, flags: flagNak, ack: 50}}},
		{"data after fin", func(c *Connection) { c.rcvNxt, c.rcvData, c.finRcvd = 11, 10, true },
			frame{header: header{typ: frameData, seq: 11}, payload: []byte("x")}},
		{"data across fin", func(c *Connection) { c.rcvNxt, c.rcvData, c.finRcvd = 11, 10, true },
			frame{header: header{typ: frameData, seq: 10}, payload: []byte("ab")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConnection(fastConfig().clone(), "client", sessionID{}, [secretLen]byte{})
			c.mu.Lock()
			tc.setup(c)
			err := c.handle(tc.f, time.Now())
			c.mu.Unlock()
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("handle: %v, want ErrProtocol", err)
			}
		})
	}
	// Honest duplicates stay harmless.
	c := newConnection(fastConfig().clone(), "client", sessionID{}, [secretLen]byte{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rcvNxt, c.rcvData, c.finRcvd = 11, 10, true
	if err := c.handle(frame{header: header{typ: frameData, seq: 5, flags: flagFin}, payload: []byte("56789")}, time.Now()); err != nil {
		t.Fatalf("a resent FIN frame: %v", err)
	}
}
