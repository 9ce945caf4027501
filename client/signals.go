package client

import (
	"os"
	"os/signal"
	"syscall"

	"resh/proto"
)

// catchSignals returns the signals resh receives (Env's in tests) and what
// stops catching them.
func (r *runner) catchSignals() (<-chan os.Signal, func()) {
	if r.env.Signals != nil {
		return r.env.Signals, func() {}
	}
	ch := make(chan os.Signal, 8)
	// SIGPIPE too: a write to a broken stdout or stderr then fails with
	// EPIPE instead of killing resh, which tells the server.
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH, syscall.SIGPIPE)
	return ch, func() { signal.Stop(ch) }
}

// forwardSignals sends the signals resh receives to the command and the
// terminal's new size on SIGWINCH. A signal while the connection is lost
// ends resh (on interrupted) instead, since it could not be delivered.
func (r *runner) forwardSignals(sigs <-chan os.Signal, stop <-chan struct{}, tty bool, fd int, isTerm bool, interrupted chan<- os.Signal) {
	for {
		select {
		case <-stop:
			return
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if tty {
					if rows, cols := r.size(fd, isTerm); rows > 0 {
						_ = r.send(proto.TypeResize, proto.Resize{Rows: rows, Cols: cols})
					}
				}
				continue
			}
			name := signalName(s)
			if name == "" {
				continue
			}
			if !r.connected.Load() {
				select {
				case interrupted <- s:
				default:
				}
				continue
			}
			r.debugf(2, "forwarding SIG%s", name)
			_ = r.send(proto.TypeSignal, proto.Signal{Name: name})
		}
	}
}

// signalName is the protocol's name of a signal resh forwards.
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGQUIT:
		return "QUIT"
	}
	return ""
}
