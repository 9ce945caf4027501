package connection

import (
	"bytes"
	"errors"
	"io"
	"net"
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

// A peer that can never be reached again makes Close give up after the
// drain timeout, with an error that says so.
func TestCloseDrainTimeout(t *testing.T) {
	d := &refusingDialer{faultyDialer{plan: func(i int) faults {
		f := clean()
		f.stallAfter = 10 << 10
		return f
	}}}
	cfg := fastConfig()
	ccfg := fastConfig()
	ccfg.Dial = d.dial
	ccfg.DrainTimeout = 300 * time.Millisecond
	_, cl, _ := pairWith(t, cfg, ccfg)
	if _, err := cl.Write(randomBytesN(100<<10, 42)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := cl.Close()
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("close: %v, want ErrDrainTimeout", err)
	}
	if el := time.Since(start); el < ccfg.DrainTimeout {
		t.Fatalf("Close gave up after %v, before the drain timeout", el)
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
