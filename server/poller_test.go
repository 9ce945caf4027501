package server

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func newTestPoller(t *testing.T) *poller {
	t.Helper()
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

func testPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}

// fired waits for a call on ch, or fails after the test timeout.
func fired(t *testing.T, ch <-chan *watch, what string) *watch {
	t.Helper()
	select {
	case w := <-ch:
		return w
	case <-time.After(testTimeout):
		t.Fatalf("the watch did not fire: %s", what)
		return nil
	}
}

// notFired checks that ch stays quiet for a while.
func notFired(t *testing.T, ch <-chan *watch, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("the watch fired: %s", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// A watch fires once the descriptor is readable, once, and again only
// after rearm.
func TestPollerOneShot(t *testing.T) {
	p := newTestPoller(t)
	r, w := testPipe(t)
	ch := make(chan *watch, 10)
	wa, err := p.watch(r, func(w *watch) { ch <- w })
	if err != nil {
		t.Fatal(err)
	}
	notFired(t, ch, "nothing to read yet")
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := fired(t, ch, "bytes to read"); got != wa {
		t.Errorf("fn got watch %p, want %p", got, wa)
	}
	if _, err := w.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	notFired(t, ch, "more bytes, not rearmed")
	wa.rearm()
	fired(t, ch, "rearmed with bytes unread")
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	wa.rearm()
	notFired(t, ch, "rearmed, all read")
	_ = w.Close()
	fired(t, ch, "the end of the pipe")
	wa.stop()
}

// Once stop returns, fn never runs again; stop waits for a running fn.
func TestPollerStop(t *testing.T) {
	p := newTestPoller(t)
	r, w := testPipe(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	wa, err := p.watch(r, func(*watch) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-entered
	stopped := make(chan struct{})
	go func() { wa.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while fn ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	wa.rearm() // after stop: nothing
	if _, err := w.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times, want 1", n)
	}
	wa.stop() // twice: nothing
}

// Many descriptors share the poller; each fires on its own.
func TestPollerMany(t *testing.T) {
	p := newTestPoller(t)
	const n = 200
	ch := make(chan int, n)
	var ws []*os.File
	for i := range n {
		r, w := testPipe(t)
		if _, err := p.watch(r, func(*watch) { ch <- i }); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for i := n - 1; i >= 0; i-- {
		if _, err := ws[i].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	for range n {
		select {
		case i := <-ch:
			if seen[i] {
				t.Errorf("pipe %d fired twice", i)
			}
			seen[i] = true
		case <-time.After(testTimeout):
			t.Fatalf("%d of %d pipes fired", len(seen), n)
		}
	}
}

func TestPollerClosed(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	p.close()
	p.close()
	r, _ := testPipe(t)
	if _, err := p.watch(r, func(*watch) {}); !errors.Is(err, errPollerClosed) {
		t.Errorf("watch after close: %v, want errPollerClosed", err)
	}
}
