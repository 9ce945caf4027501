//go:build !linux

package server

import (
	"os"
	"sync"
	"syscall"
)

// exitWaiter waits for a command's process to exit and reaps it, blocking
// an OS thread meanwhile.
type exitWaiter struct{ p *os.Process }

func newExitWaiter(p *os.Process) *exitWaiter { return &exitWaiter{p: p} }

// wait waits until the process exited and reaped, then calls reaped while
// holding mu.
func (w *exitWaiter) wait(mu sync.Locker, reaped func()) (syscall.WaitStatus, error) {
	ps, err := w.p.Wait()
	mu.Lock()
	reaped()
	mu.Unlock()
	if err != nil {
		return 0, err
	}
	return ps.Sys().(syscall.WaitStatus), nil
}
