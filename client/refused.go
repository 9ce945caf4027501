package client

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"resh/connection"
)

// DefaultGiveUp is how long resh redials a server that refuses the
// connection (reshd is not running there any more, and the session died
// with it) before giving up (-give-up). Other failures (no route, no
// answer) keep redialling for the whole resume timeout: the network may
// come back, a dead reshd will not.
const DefaultGiveUp = 30 * time.Second

// giveUp is resh's -give-up time.
func (r *runner) giveUp() time.Duration {
	if r.o.GiveUp > 0 {
		return r.o.GiveUp
	}
	return DefaultGiveUp
}

// refusalNotice returns what to do with the connection's StateEvents (on
// its goroutine) to say once per outage, on a terminal, that reshd
// refuses the connection and that resh retries.
func (r *runner) refusalNotice(addr string) func(connection.StateEvent) {
	told := false
	return func(ev connection.StateEvent) {
		switch {
		case ev.Connected:
			told = false
		case ev.Attempt > 0 && errors.Is(ev.Err, syscall.ECONNREFUSED) && !told:
			told = true
			r.stderr.printf("resh: reshd at %s refused the connection; retrying for %v...%s", addr, r.giveUp(), r.eol())
		}
	}
}

// goneError is resh's error once the connection gave up on a server that
// refused it for the -give-up time.
func (r *runner) goneError() error {
	return fmt.Errorf("reshd at %s is gone: it refused the connection for %v (change the wait with -give-up)", r.o.Addr(), r.giveUp())
}
