package connection

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// maxConnects bounds the connects a Client waits on at once; twice as
// many goroutines may run, those abandoned still returning.
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

// ErrServerGone ends a Client's session whose redials were all refused
// for Config.RefusedTimeout.
var ErrServerGone = errors.New("the server refused every reconnection: it is gone")

// refused reports a connect the server's host refused: nothing listens.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// refusals tracks, for Config.RefusedTimeout, since when every redial was
// refused; zero since: the last failure was not a refusal.
type refusals struct {
	limit time.Duration
	since time.Time
}

// failed takes a failed redial's error at now and reports whether the
// session must end (refused for limit).
func (r *refusals) failed(err error, now time.Time) bool {
	if r.limit <= 0 || !refused(err) {
		r.since = time.Time{}
		return false
	}
	if r.since.IsZero() {
		r.since = now
	}
	return now.Sub(r.since) >= r.limit
}

// cap moves next, the next redial, no later than the end of the refusals'
// time, so that the last redial happens then.
func (r *refusals) cap(next time.Time) time.Time {
	if r.limit <= 0 || r.since.IsZero() {
		return next
	}
	if end := r.since.Add(r.limit); end.Before(next) {
		return end
	}
	return next
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

	// lastAddr is the server's address as the last transport saw it (an
	// IP), dialled when the name in address does not resolve: the session
	// lives in the server process there.
	lastAddr string

	results chan connectResult            // sized so that no report blocks
	running int                           // goroutines that have not reported
	live    map[uint64]context.CancelFunc // connects whose result is wanted
	seq     uint64                        // ids in the order connects start
}

func newConnectRace(ctx context.Context, cfg *Config, network, address string) *connectRace {
	return &connectRace{
		ctx:     ctx,
		dial:    cfg.Dial,
		network: network,
		address: address,
		results: make(chan connectResult, 2*maxConnects),
		live:    make(map[uint64]context.CancelFunc),
	}
}

// full reports whether no connect may start now: too many goroutines have
// not returned (a Dial slow to heed its context).
func (r *connectRace) full() bool { return r.running >= 2*maxConnects }

// start begins a connect that gives up after life. With maxConnects
// waited on already, it abandons the second oldest: the newest connects
// are the ones likely to get through a network that just healed, the
// oldest one is kept for a path slower than the others' short lives.
func (r *connectRace) start(life time.Duration) {
	if len(r.live) >= maxConnects {
		first, second := ^uint64(0), ^uint64(0) // the two oldest
		for id := range r.live {
			switch {
			case id < first:
				first, second = id, first
			case id < second:
				second = id
			}
		}
		r.abandon(second)
	}
	r.seq++
	id := r.seq
	ctx, cancel := context.WithTimeout(r.ctx, life)
	r.live[id] = cancel
	r.running++
	last := r.lastAddr
	go func() {
		tr, err := r.dial(ctx, r.network, r.address)
		var dns *net.DNSError
		if err != nil && last != "" && last != r.address && errors.As(err, &dns) && ctx.Err() == nil {
			tr, err = r.dial(ctx, r.network, last)
		}
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

// abandon cancels connect id; what it opens is closed.
func (r *connectRace) abandon(id uint64) {
	if cancel, ok := r.live[id]; ok {
		cancel()
		delete(r.live, id)
	}
}

// cancelAll abandons every connect in flight.
func (r *connectRace) cancelAll() {
	for id := range r.live {
		r.abandon(id)
	}
}

// stop abandons every connect and waits for their goroutines.
func (r *connectRace) stop() {
	r.cancelAll()
	for r.running > 0 {
		r.take(<-r.results)
	}
}
