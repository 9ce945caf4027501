package server

import (
	"runtime"
	"syscall"
)

// spawner starts the sessions' commands from one OS thread of its own, for
// the life of the Server. Each command's leader is started with
// Pdeathsig (SIGHUP, then the guardian's SIGKILL, see Guard), which the
// kernel sends when the thread that forked it exits, not the process: the
// thread must live as long as reshd, which no thread of the Go runtime's
// pool promises, so the spawner's goroutine keeps its thread locked. One
// thread for the Server, none per session.
type spawner struct {
	reqs chan func()
	done chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	defer close(s.done)
	// Unlocked when the Server is done: the thread then goes back to the
	// runtime's pool instead of exiting (which would fire the Pdeathsig of
	// commands still running).
	defer runtime.UnlockOSThread()
	for fn := range s.reqs {
		fn()
	}
}

// run runs fn on the spawner's thread and waits for it.
func (s *spawner) run(fn func()) {
	done := make(chan struct{})
	s.reqs <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// close ends the spawner, once no session starts a command any more.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// pdeathsig is the signal a session's leader gets if reshd dies.
const pdeathsig = syscall.SIGHUP
