//go:build !linux

package server

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits for descriptors with one goroutine per watch, each waiting
// in Go's netpoller (Linux has one epoll goroutine for all).
type poller struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// watch is one descriptor the poller waits on.
type watch struct {
	c       syscall.Conn
	rc      syscall.RawConn
	fn      func(*watch)
	mu      sync.Mutex // held while fn runs
	stopped atomic.Bool
	rearmCh chan struct{}
	stopCh  chan struct{}
	done    chan struct{}
}

func newPoller() (*poller, error) { return &poller{}, nil }

// close waits for every watch's goroutine.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}

var errPollerClosed = errors.New("server: poller closed")

// watch calls fn with the watch once c's descriptor is readable (or at its
// end, or on error). fn must not block. The caller keeps c open until stop
// returns.
func (p *poller) watch(c syscall.Conn, fn func(*watch)) (*watch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reshd: watch: %w", err)
	}
	w := &watch{c: c, rc: rc, fn: fn, rearmCh: make(chan struct{}, 1), stopCh: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPollerClosed
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.loop()
	}()
	return w, nil
}

func (w *watch) loop() {
	defer close(w.done)
	for {
		if err := w.rc.Read(func(fd uintptr) bool { return readable(int(fd)) }); err != nil {
			return
		}
		w.mu.Lock()
		if !w.stopped.Load() {
			w.fn(w)
		}
		w.mu.Unlock()
		select {
		case <-w.rearmCh:
		case <-w.stopCh:
			return
		}
	}
}

// readable polls fd without waiting.
func readable(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err != unix.EINTR {
			return n > 0 || err != nil
		}
	}
}

// rearm waits for the descriptor to be readable again.
func (w *watch) rearm() {
	select {
	case w.rearmCh <- struct{}{}:
	default:
	}
}

// stop ends the watch: once it returns, fn is not running and is never
// called again. It must not be called from fn.
func (w *watch) stop() {
	if w.stopped.Swap(true) {
		return
	}
	close(w.stopCh)
	// End a wait in the netpoller.
	switch c := w.c.(type) {
	case interface{ SetReadDeadline(time.Time) error }:
		_ = c.SetReadDeadline(time.Unix(1, 0))
	case interface{ SetDeadline(time.Time) error }:
		_ = c.SetDeadline(time.Unix(1, 0))
	}
	<-w.done
}
