package connection

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Close returns only once the peer has every byte written before it; the
// peer then reads them all and io.EOF.
func TestCloseDrains(t *testing.T) {
	cfg := fastConfig()
	_, cl, acc := pair(t, cfg)
	data := randomBytesN(3<<20, 40)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(acc)
		got <- b
	}()
	if _, err := cl.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// Close has returned: the peer acknowledged everything.
	cl.mu.Lock()
	una, fin := cl.sndUna, cl.finSeq
	cl.mu.Unlock()
	if una != fin+1 {
		t.Fatalf("Close returned with %d of %d bytes acknowledged", una, fin)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("peer read %d bytes, want %d", len(b), len(data))
	}
	if err := acc.Close(); err != nil {
		t.Fatalf("peer close: %v", err)
	}
}

// The transport dies right after Close starts: Close still drains, over the
// resumed session.
func TestCloseDrainsAcrossResume(t *testing.T) {
	d := &faultyDialer{plan: func(i int) faults {
		f := clean()
		if i == 0 {
			f.stallAfter = 300 << 10 // black hole during the drain
		}
		return f
	}}
	cfg := fastConfig()
	_, cl, acc := pairWith(t, cfg, withDialer(cfg, d))
	data := randomBytesN(1<<20, 41)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(acc)
		got <- b
	}()
	if _, err := cl.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("peer read %d bytes, want %d", len(b), len(data))
	}
	if d.dials() < 2 {
		t.Fatal("the transport was never replaced")
	}
	acc.Close()
}

// A peer that can never be reached again: Close waits while the session is
// kept (the client's resume timeout), then gives up with an error that says
// the bytes were not acknowledged; the drain timeout alone does not end it.
func TestCloseGivesUpWithTheSession(t *testing.T) {
	d := &refusingDialer{faultyDialer{plan: func(i int) faults {
		f := clean()
		f.stallAfter = 10 << 10
		return f
	}}}
	cfg := fastConfig()
	ccfg := fastConfig()
	ccfg.Dial = d.dial
	ccfg.DrainTimeout = time.Second // longer than DeadTimeout: the stall is noticed first
	ccfg.ResumeTimeout = 1500 * time.Millisecond
	_, cl, _ := pairWith(t, cfg, ccfg)
	if _, err := cl.Write(randomBytesN(100<<10, 42)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := cl.Close()
	if err == nil || !strings.Contains(err.Error(), "unacknowledged") {
		t.Fatalf("close: %v, want bytes reported unacknowledged", err)
	}
	if !errors.Is(err, ErrResumeTimeout) {
		t.Fatalf("close: %v, want the resume timeout as the cause", err)
	}
	if el := time.Since(start); el < ccfg.ResumeTimeout {
		t.Fatalf("Close gave up after %v, before the session was given up (%v)", el, ccfg.ResumeTimeout)
	}
}

// A peer that stays attached but acknowledges nothing (it reads nothing and
// its buffer is full) makes Close give up after the drain timeout, with an
// error that says so, and the server does not remember that session as
// cleanly closed: the client is told it is unknown, not closed.
func TestCloseDrainTimeout(t *testing.T) {
	scfg := fastConfig()
	scfg.DrainTimeout = 300 * time.Millisecond
	_, cl, acc := pairWith(t, scfg, fastConfig())
	// The client reads nothing: its receive buffer fills, and the rest
	// stays in the server's send buffer, unacknowledged. Default buffers:
	// 512 KiB on each side; 768 KiB leave a quarter of the send buffer
	// free, so that Write returns whatever the client's window is when
	// its buffer is full (1 MiB, both buffers to the byte, once blocked
	// Write for ever in CI).
	if _, err := acc.Write(randomBytesN(768<<10, 42)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := acc.Close()
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("close: %v, want ErrDrainTimeout", err)
	}
	if el := time.Since(start); el < scfg.DrainTimeout {
		t.Fatalf("Close gave up after %v, before the drain timeout", el)
	}
	// The client reads what it was given, then learns that the session is
	// gone without a clean close.
	_, err = io.Copy(io.Discard, cl)
	if err == nil || errors.Is(err, ErrPeerClosed) {
		t.Fatalf("client read ended with %v, want an error that is not a clean close", err)
	}
	if !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("client read ended with %v, want ErrUnknownSession", err)
	}
}

// The transport is lost after the server wrote its last bytes and closed,
// for longer than the drain timeout: Close keeps the session for the whole
// detach timeout, and the client that comes back gets every byte and a
// clean end.
func TestCloseWaitsForADetachedClient(t *testing.T) {
	down := make(chan struct{})
	up := make(chan struct{})
	d := &faultyDialer{plan: func(i int) faults { return clean() }}
	ccfg := fastConfig()
	ccfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-down:
			select {
			case <-up:
			default:
				return nil, errors.New("test: network down")
			}
		default:
		}
		return d.dial(ctx, network, addr)
	}
	scfg := fastConfig()
	scfg.DrainTimeout = 200 * time.Millisecond
	scfg.DetachTimeout = 30 * time.Second
	_, cl, acc := pairWith(t, scfg, ccfg)
	data := randomBytesN(200<<10, 43)
	close(down)
	d.killCurrent()
	if _, err := acc.Write(data); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- acc.Close() }()
	// The outage lasts several drain timeouts.
	select {
	case err := <-closed:
		t.Fatalf("server Close returned during the outage: %v", err)
	case <-time.After(5 * scfg.DrainTimeout):
	}
	close(up)
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("client read %d bytes, want %d", len(got), len(data))
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("server close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server Close did not return after the client came back")
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("client close: %v", err)
	}
}

// Half-close: after the client's CloseWrite the server reads EOF, and the
// other direction keeps flowing to the end.
func TestHalfClose(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	if _, err := cl.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cl.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	req, err := io.ReadAll(acc)
	if err != nil || string(req) != "request" {
		t.Fatalf("server read %q, %v", req, err)
	}
	if _, err := cl.Write([]byte("x")); !errors.Is(err, ErrWriteAfterCloseWrite) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	transfer(t, acc, cl, randomBytesN(2<<20, 43), 20*time.Second)
	if err := acc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
}

// Both ends write and close at the same moment: both drains succeed, since
// a closing end keeps acknowledging what reaches it.
func TestSimultaneousClose(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	var wg, written sync.WaitGroup
	errs := make(chan error, 4)
	written.Add(2)
	for _, p := range []Peer{cl, acc} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Write(randomBytesN(200<<10, 44)); err != nil {
				errs <- err
			}
			written.Done()
			written.Wait() // both have written: now close together
			errs <- p.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// After the peer closed, Write fails with ErrPeerClosed rather than
// blocking or pretending; Read gives the bytes sent before, then io.EOF.
func TestWriteAfterPeerClosed(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	if _, err := acc.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := acc.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(cl)
	if err != nil || string(b) != "bye" {
		t.Fatalf("read %q, %v", b, err)
	}
	// The CLOSE may still be on its way: Write fails once it arrived.
	var werr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, werr = cl.Write([]byte("x")); werr != nil {
			break
		}
		<-cl.finishedCh
	}
	if !errors.Is(werr, ErrPeerClosed) {
		t.Fatalf("write after peer close: %v", werr)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("close after peer close: %v", err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := cl.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := cl.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := acc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read: %v, want io.EOF", err)
	}
	acc.Close()
}

func TestDeadlines(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	_ = cl.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := cl.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v, want a timeout", err)
	}
	// A write blocks once the peer's window and our buffer are full.
	_ = cl.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = cl.Write(make([]byte, 4<<20))
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write past deadline: %v, want a timeout", err)
	}
	// Clearing the deadline lets the connection go on.
	_ = cl.SetDeadline(time.Time{})
	go func() { _, _ = io.Copy(io.Discard, acc) }()
	if _, err := cl.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
}

// Abort while the transport is lost returns at once, where Close would keep
// waiting for the peer: the user is leaving.
func TestAbortWhileDetached(t *testing.T) {
	d := &refusingDialer{faultyDialer{plan: func(i int) faults { return clean() }}}
	ccfg := fastConfig()
	ccfg.Dial = d.dial
	lost := make(chan struct{})
	var once sync.Once
	ccfg.OnState = func(ev StateEvent) {
		if !ev.Connected {
			once.Do(func() { close(lost) })
		}
	}
	_, cl, _ := pairWith(t, fastConfig(), ccfg)
	if _, err := cl.Write([]byte("never acknowledged")); err != nil {
		t.Fatal(err)
	}
	d.killCurrent()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not notice the lost transport")
	}
	aborted := make(chan struct{})
	go func() { cl.Abort(); close(aborted) }()
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Fatal("Abort did not return while the transport was lost")
	}
	if _, err := cl.Write([]byte("x")); !errors.Is(err, ErrAborted) {
		t.Fatalf("write after Abort: %v, want ErrAborted", err)
	}
	if _, err := cl.Read(make([]byte, 1)); !errors.Is(err, ErrAborted) {
		t.Fatalf("read after Abort: %v, want ErrAborted", err)
	}
}
