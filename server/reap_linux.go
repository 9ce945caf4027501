package server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitWatch reaps a command's process once it exits, without a goroutine
// or an OS thread waiting meanwhile: a pidfd (Linux 5.3) turns readable
// when the process exits, the poller waits for that with every other
// descriptor, and only then is the process reaped, with wait4 and WNOHANG.
// Where pidfds are missing, a goroutine waits in waitid instead, holding a
// thread.
type exitWatch struct {
	p     *os.Process
	pidfd *os.File
	w     *watch
	done  chan struct{} // closed when the fallback goroutine returns
}

// watchExit starts waiting for p, a child not yet reaped (so its pid cannot
// be reused meanwhile). Once p exited it reaps it and calls reaped with its
// status, holding mu, so that whoever signals p's process group under mu
// knows whether the group may be gone. reaped runs on the poller's
// goroutine: it must not block.
func watchExit(pl *poller, p *os.Process, mu sync.Locker, reaped func(syscall.WaitStatus, error)) *exitWatch {
	e := &exitWatch{p: p}
	reap := func() bool {
		mu.Lock()
		defer mu.Unlock()
		ok, ws, err := reapNow(p.Pid)
		if ok {
			reaped(ws, err)
		}
		return ok
	}
	if f, err := openPidfd(p.Pid); err == nil {
		var w *watch
		if w, err = pl.watch(f, func(w *watch) {
			if !reap() {
				w.rearm() // not reapable yet
			}
		}); err == nil {
			e.pidfd, e.w = f, w
			return e
		}
		_ = f.Close()
	}
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		for !reap() {
			// Wait for the exit without reaping, then reap under mu.
			var info unix.Siginfo
			if err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil && err != unix.EINTR {
				mu.Lock()
				reaped(0, fmt.Errorf("reshd: wait for process %d: %w", p.Pid, err))
				mu.Unlock()
				return
			}
		}
	}()
	return e
}

// openPidfd opens a non-blocking pidfd for pid.
func openPidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) { // PIDFD_NONBLOCK came with Linux 5.10
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				_ = unix.Close(fd)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// reapNow reaps pid if it exited: it reports whether it did, or failed.
func reapNow(pid int) (bool, syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return true, 0, fmt.Errorf("reshd: wait for process %d: %w", pid, err)
		}
		return got != 0, ws, nil
	}
}

// stop releases the watch, once reaped was called.
func (e *exitWatch) stop() {
	if e.w != nil {
		e.w.stop()
		_ = e.pidfd.Close()
	} else {
		<-e.done
	}
	_ = e.p.Release()
}
