package server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitWaiter waits for a command's process to exit and reaps it without
// holding an OS thread: a pidfd (Linux 5.3; non-blocking since 5.10) turns
// readable when the process exits, and Go's netpoller waits for that as it
// waits for a socket. Only then is the process reaped, with wait4 and
// WNOHANG. Where pidfds are missing it waits in waitid, blocking a thread.
type exitWaiter struct {
	p     *os.Process
	pidfd *os.File // nil: wait blocking
}

// newExitWaiter prepares to wait for p, a child not yet reaped (so its pid
// cannot be reused meanwhile).
func newExitWaiter(p *os.Process) *exitWaiter {
	w := &exitWaiter{p: p}
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) { // PIDFD_NONBLOCK is Linux 5.10
		if fd, err = unix.PidfdOpen(p.Pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				_ = unix.Close(fd)
			}
		}
	}
	if err == nil {
		unix.CloseOnExec(fd)
		w.pidfd = os.NewFile(uintptr(fd), "pidfd")
	}
	return w
}

// wait waits until the process exited, then reaps it and calls reaped
// while holding mu: whoever signals the process under mu knows whether its
// id may already belong to another.
func (w *exitWaiter) wait(mu sync.Locker, reaped func()) (syscall.WaitStatus, error) {
	defer func() { _ = w.p.Release() }()
	var (
		ws   syscall.WaitStatus
		done bool
		err  error
	)
	reap := func() bool {
		mu.Lock()
		defer mu.Unlock()
		done, ws, err = w.reap()
		if done {
			reaped()
		}
		return done
	}
	if w.pidfd != nil {
		defer func() { _ = w.pidfd.Close() }()
		if rc, rerr := w.pidfd.SyscallConn(); rerr == nil {
			_ = rc.Read(func(uintptr) bool { return reap() })
		}
	}
	for !done {
		// No pollable pidfd: wait for the exit without reaping, then reap.
		var info unix.Siginfo
		if werr := unix.Waitid(unix.P_PID, w.p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); werr != nil && werr != unix.EINTR {
			mu.Lock()
			reaped()
			mu.Unlock()
			return 0, fmt.Errorf("server: wait for process %d: %w", w.p.Pid, werr)
		}
		reap()
	}
	return ws, err
}

// reap reaps the process if it exited.
func (w *exitWaiter) reap() (bool, syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		pid, err := syscall.Wait4(w.p.Pid, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return true, 0, fmt.Errorf("server: wait for process %d: %w", w.p.Pid, err)
		}
		return pid != 0, ws, nil
	}
}
