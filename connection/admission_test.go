package connection

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestAdmissionEvictsOldest(t *testing.T) {
	a := newAdmission(4, 2)
	var evicted []string
	admit := func(host, name string) *ticket {
		return a.admit(host, func() { evicted = append(evicted, name) })
	}
	a1 := admit("a", "a1")
	admit("a", "a2")
	admit("a", "a3") // a's limit: a1 goes
	b1 := admit("b", "b1")
	admit("b", "b2")
	admit("c", "c1") // the global limit: the oldest, a2, goes
	if want := "a1 a2"; strings.Join(evicted, " ") != want {
		t.Fatalf("evicted %v, want %s", evicted, want)
	}
	all, byHost := a.pending()
	if all != 4 || byHost["a"] != 1 || byHost["b"] != 2 || byHost["c"] != 1 {
		t.Fatalf("pending %d %v", all, byHost)
	}
	a.release(a1) // evicted already: nothing happens
	a.release(b1)
	a.release(b1)
	a.endHandshake(b1)
	if all, byHost := a.pending(); all != 3 || byHost["b"] != 1 {
		t.Fatalf("after releases: %d %v", all, byHost)
	}
	// A ticket handed over to a session outlives its connection
	// handshake, and is evicted the session's way.
	d1 := admit("d", "d1")
	a.handOver(d1, func() { evicted = append(evicted, "d1 session") })
	a.endHandshake(d1)
	if all, _ := a.pending(); all != 4 {
		t.Fatalf("a handed-over ticket was released by the end of the handshake: %d pending", all)
	}
	for a.evictOldest() {
	}
	if want := "a1 a2 a3 b2 c1 d1 session"; strings.Join(evicted, " ") != want {
		t.Fatalf("evicted %v, want %s", evicted, want)
	}
	if all, byHost := a.pending(); all != 0 || len(byHost) != 0 {
		t.Fatalf("after evicting all: %d %v", all, byHost)
	}
}

// holdSilent opens n TCP connections to addr that never send a byte, and
// waits until srv has admitted each.
func holdSilent(t *testing.T, srv *Server, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Admitted once its SERVER_HELLO is here.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, frameLen(1+nonceLen))); err != nil {
			t.Fatalf("silent connection %d: no SERVER_HELLO: %v", len(conns), err)
		}
	}
	return conns
}

// Silent connections from the client's own address cannot keep it out: the
// oldest unfinished handshakes are evicted, and a new session is made at
// once, not after the silent ones time out.
func TestAdmissionSilentFlood(t *testing.T) {
	for _, secure := range []bool{false, true} {
		cfg := fastConfig()
		cfg.HandshakeTimeout = time.Minute // the flood would hold for a minute
		cfg.SecureAbove = secure
		srv, err := Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		conns := holdSilent(t, srv, 2*admitPerHost)
		if all, _ := srv.adm.pending(); all > admitPerHost {
			t.Fatalf("%d handshakes pending from one address, want at most %d", all, admitPerHost)
		}
		// The oldest were closed by the server.
		_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conns[0].Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
			t.Fatalf("oldest silent connection: read %d, %v; want it closed", n, err)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl, err := Dial(ctx, "tcp", srv.Addr().String(), cfg)
		cancel()
		if err != nil {
			t.Fatalf("secure=%v: dial under a flood: %v", secure, err)
		}
		acc, err := srv.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if secure {
			// Until the layer above is done, the session is admitted;
			// then it no longer counts.
			if !srv.adm.contains(acc.ticket) {
				t.Fatal("a session not yet keyed does not count as a handshake")
			}
			key := bytes.Repeat([]byte{7}, ResumeKeySize)
			if err := acc.SetResumeKey(key); err != nil {
				t.Fatal(err)
			}
			if err := cl.SetResumeKey(key); err != nil {
				t.Fatal(err)
			}
			if srv.adm.contains(acc.ticket) {
				t.Fatal("a keyed session still counts as a handshake")
			}
		}
		if _, err := cl.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(acc, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v", buf, err)
		}
		t.Logf("secure=%v: session made in %v beside %d silent connections", secure, time.Since(start), len(conns))
		cl.abort()
		srv.Close()
	}
}

// contains reports whether t still counts (tests).
func (a *admission) contains(t *ticket) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return t != nil && t.inAll != nil
}

// A session not yet keyed is evicted like a handshake: a stranger cannot
// hold the server by never finishing the handshake above.
func TestAdmissionEvictsUnkeyedSession(t *testing.T) {
	cfg := fastConfig()
	cfg.SecureAbove = true
	srv, _, acc := pair(t, cfg)
	holdSilent(t, srv, admitPerHost)
	select {
	case <-acc.finishedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the unkeyed session outlived newer handshakes from its address")
	}
	if err := acc.SetResumeKey(make([]byte, ResumeKeySize)); err == nil {
		t.Fatal("an evicted session took a key")
	}
}

// The client's first bytes are awaited for a short time only, however long
// the handshake may take.
func TestHelloTimeout(t *testing.T) {
	cfg := fastConfig()
	cfg.HandshakeTimeout = time.Minute
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := holdSilent(t, srv, 1)[0]
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(3 * helloTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("silent connection: %v; want it closed by the server", err)
	}
	if took := time.Since(start); took > helloTimeout+time.Second {
		t.Fatalf("closed after %v; want about %v", took, helloTimeout)
	}
}

// emfileListener fails its first n Accepts as a process out of file
// descriptors does.
type emfileListener struct {
	net.Listener
	mu    sync.Mutex
	n     int
	calls int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Out of file descriptors, the accept loop backs off instead of spinning,
// logs once, and goes on serving.
func TestAcceptOutOfDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &emfileListener{Listener: ln, n: 6}
	var logs syncBuffer
	cfg := fastConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	srv := NewServer(fl, cfg)
	defer srv.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Dial(ctx, "tcp", srv.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("dial after EMFILE: %v", err)
	}
	defer cl.abort()
	if _, err := srv.Accept(); err != nil {
		t.Fatal(err)
	}
	fl.mu.Lock()
	calls := fl.calls
	fl.mu.Unlock()
	// 6 failures, backing off 5, 10, 20, 40, 80 and 160 ms: about 315 ms.
	if took := time.Since(start); calls > 8 || took < 250*time.Millisecond {
		t.Fatalf("%d accepts in %v: the loop spins", calls, time.Since(start))
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 || !strings.Contains(logs.String(), "failed_accepts=6") {
		t.Fatalf("log of a burst of 6 EMFILE:\n%s", logs.String())
	}
}
