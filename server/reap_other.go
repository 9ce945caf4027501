//go:build !linux

package server

import (
	"os"
	"sync"
	"syscall"
)

// exitWatch reaps a command's process once it exits, with a goroutine
// waiting for it (holding an OS thread).
type exitWatch struct {
	p    *os.Process
	done chan struct{}
}

// watchExit starts waiting for p. Once p exited it reaps it and calls
// reaped with its status, holding mu.
func watchExit(_ *poller, p *os.Process, mu sync.Locker, reaped func(syscall.WaitStatus, error)) *exitWatch {
	e := &exitWatch{p: p, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		ps, err := p.Wait()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			reaped(0, err)
			return
		}
		reaped(ps.Sys().(syscall.WaitStatus), nil)
	}()
	return e
}

// stop releases the watch, once reaped was called.
func (e *exitWatch) stop() {
	<-e.done
	_ = e.p.Release()
}
