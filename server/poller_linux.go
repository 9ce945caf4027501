package server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits for the descriptors of every session of a Server with one
// goroutine: an epoll instance, itself waited on through Go's netpoller, so
// that an idle session needs no goroutine (nor OS thread) per pipe, pty,
// process or socket it waits on. Each watch is one-shot: it calls its
// function once the descriptor is readable, and again only after rearm.
type poller struct {
	ep   *os.File        // the epoll instance, non-blocking
	rc   syscall.RawConn // ep's
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	next    uint32
	watches map[uint32]*watch
}

// watch is one descriptor the poller waits on.
type watch struct {
	p       *poller
	id      uint32
	rc      syscall.RawConn
	fn      func(*watch)
	mu      sync.Mutex // held while fn runs
	stopped atomic.Bool
}

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reshd: epoll: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("reshd: epoll: %w", err)
	}
	p := &poller{ep: os.NewFile(uintptr(fd), "epoll"), done: make(chan struct{}), watches: map[uint32]*watch{}}
	if p.rc, err = p.ep.SyscallConn(); err != nil {
		_ = p.ep.Close()
		return nil, fmt.Errorf("reshd: epoll: %w", err)
	}
	go p.loop()
	return p, nil
}

// loop dispatches events until close.
func (p *poller) loop() {
	defer close(p.done)
	var (
		events [64]unix.EpollEvent
		n      int
	)
	ready := func(fd uintptr) bool {
		for {
			var err error
			n, err = unix.EpollWait(int(fd), events[:], 0)
			if err != unix.EINTR {
				return n > 0 // on error, wait to be readable again
			}
		}
	}
	for {
		if err := p.rc.Read(ready); err != nil {
			return // closed
		}
		for _, ev := range events[:max(n, 0)] {
			p.mu.Lock()
			w := p.watches[uint32(ev.Fd)]
			p.mu.Unlock()
			if w != nil {
				w.fire()
			}
		}
	}
}

// close stops the poller; its watches never fire again.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.ep.Close()
	<-p.done
}

// errPollerClosed is returned by watch after close.
var errPollerClosed = errors.New("server: poller closed")

// watch calls fn with the watch, from the poller's goroutine, once c's
// descriptor is readable (or at its end, or on error). fn must not block:
// it starts whatever takes time. The caller keeps c open until stop
// returns.
func (p *poller) watch(c syscall.Conn, fn func(*watch)) (*watch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reshd: watch: %w", err)
	}
	w := &watch{p: p, rc: rc, fn: fn}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPollerClosed
	}
	for {
		p.next++
		if _, used := p.watches[p.next]; !used {
			break
		}
	}
	w.id = p.next
	p.watches[w.id] = w
	p.mu.Unlock()
	if err := w.ctl(unix.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.watches, w.id)
		p.mu.Unlock()
		return nil, fmt.Errorf("reshd: watch: %w", err)
	}
	return w, nil
}

func (w *watch) ctl(op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(w.id)}
	var err error
	cerr := w.p.rc.Control(func(ep uintptr) {
		if cerr := w.rc.Control(func(fd uintptr) {
			err = unix.EpollCtl(int(ep), op, int(fd), &ev)
		}); cerr != nil {
			err = cerr
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped.Load() {
		w.fn(w)
	}
}

// rearm waits for the descriptor to be readable again. It may be called
// from fn, and after stop (then it does nothing).
func (w *watch) rearm() {
	if !w.stopped.Load() {
		_ = w.ctl(unix.EPOLL_CTL_MOD)
	}
}

// stop ends the watch: once it returns, fn is not running and is never
// called again. It must not be called from fn.
func (w *watch) stop() {
	if w.stopped.Swap(true) {
		return
	}
	w.mu.Lock() // after a running fn
	defer w.mu.Unlock()
	_ = w.ctl(unix.EPOLL_CTL_DEL)
	w.p.mu.Lock()
	delete(w.p.watches, w.id)
	w.p.mu.Unlock()
}
