package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRefusals(t *testing.T) {
	t0 := time.Unix(1000, 0)
	refusedErr := fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)
	r := refusals{limit: 30 * time.Second}
	if r.failed(refusedErr, t0) || r.failed(refusedErr, t0.Add(29*time.Second)) {
		t.Fatal("gave up before the limit")
	}
	if got := r.cap(t0.Add(40 * time.Second)); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("cap: %v, want the limit's end", got)
	}
	// A failure that is not a refusal starts the count again.
	if r.failed(errors.New("i/o timeout"), t0.Add(29*time.Second)) || !r.since.IsZero() {
		t.Fatal("a timeout counted as a refusal")
	}
	if r.failed(refusedErr, t0.Add(31*time.Second)) {
		t.Fatal("the count did not start again")
	}
	if !r.failed(refusedErr, t0.Add(61*time.Second)) {
		t.Error("refused for 30s: want the end")
	}
	off := refusals{}
	if off.failed(refusedErr, t0) || off.failed(refusedErr, t0.Add(time.Hour)) {
		t.Error("no limit: never the end")
	}
}

// A Client whose server process is gone (its connections refused) ends
// its session with ErrServerGone after RefusedTimeout, and Close returns at
// once; a refusal the network gives (no route) does not count.
func TestClientGivesUpOnRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ErrServerGone},
		{"no route", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, ErrResumeTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &failingDialer{err: c.err}
			ccfg := fastConfig()
			ccfg.Dial = d.dial
			ccfg.RefusedTimeout = 300 * time.Millisecond
			ccfg.ResumeTimeout = 2 * time.Second
			scfg := fastConfig()
			scfg.DetachTimeout = time.Second
			_, cl, _ := pairWith(t, scfg, ccfg)
			d.killCurrent()
			start := time.Now()
			_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := cl.Read(make([]byte, 1))
			if !errors.Is(err, c.want) {
				t.Fatalf("Read: %v, want %v", err, c.want)
			}
			if took := time.Since(start); c.want == ErrServerGone && took > time.Second {
				t.Errorf("gave up after %v, want about 300ms", took)
			}
			done := make(chan struct{})
			go func() { _ = cl.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return")
			}
		})
	}
}

// failingDialer lets the first transport through and fails every later
// dial with err.
type failingDialer struct {
	mu  sync.Mutex
	n   int
	err error
	tr  net.Conn
}

func (d *failingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n > 1 {
		return nil, d.err
	}
	tr, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	d.tr = tr
	return tr, err
}

func (d *failingDialer) killCurrent() {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.tr.Close()
}
