package connection

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// maxConnects bounds the connects a Client has in flight at once.
const maxConnects = 10

// unreachable reports a connect that failed without reaching the server:
// the host has no network or no route to it, the local address is gone, or
// the connect went unanswered (its SYNs lost). Trying again costs the
// server nothing. A refusal, a reset or a name that does not resolve are
// answers: the caller backs off.
func unreachable(err error) bool {
	for _, e := range []error{syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false // a resolver answered, or is the one not answering
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// connectResult is what one connect gave.
type connectResult struct {
	id  uint64
	tr  net.Conn
	err error
}

// connectRace runs a Client's connects, each in a goroutine of its own, so
// that a new one can start while earlier ones wait for an answer; used by
// the Client's redial goroutine only.
type connectRace struct {
	ctx              context.Context
	dial             func(ctx context.Context, network, address string) (net.Conn, error)
	network, address string

	results chan connectResult            // sized so that no report blocks
	running int                           // goroutines that have not reported
	live    map[uint64]context.CancelFunc // connects whose result is wanted
	seq     uint64
}

func newConnectRace(ctx context.Context, cfg *Config, network, address string) *connectRace {
	return &connectRace{
		ctx:     ctx,
		dial:    cfg.Dial,
		network: network,
		address: address,
		results: make(chan connectResult, maxConnects),
		live:    make(map[uint64]context.CancelFunc),
	}
}

// full reports whether no connect may start now.
func (r *connectRace) full() bool { return r.running >= maxConnects }

// start begins a connect that gives up after life.
func (r *connectRace) start(life time.Duration) {
	r.seq++
	id := r.seq
	ctx, cancel := context.WithTimeout(r.ctx, life)
	r.live[id] = cancel
	r.running++
	go func() {
		tr, err := r.dial(ctx, r.network, r.address)
		r.results <- connectResult{id: id, tr: tr, err: err}
	}()
}

// take accounts for res. It reports false, closing what res opened, for a
// connect no longer wanted.
func (r *connectRace) take(res connectResult) bool {
	r.running--
	cancel, ok := r.live[res.id]
	if !ok {
		if res.tr != nil {
			res.tr.Close()
		}
		return false
	}
	delete(r.live, res.id)
	cancel()
	return true
}

// cancelAll abandons every connect in flight; what they open is closed.
func (r *connectRace) cancelAll() {
	for id, cancel := range r.live {
		cancel()
		delete(r.live, id)
	}
}

// stop abandons every connect and waits for their goroutines.
func (r *connectRace) stop() {
	r.cancelAll()
	for r.running > 0 {
		r.take(<-r.results)
	}
}
