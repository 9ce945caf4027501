package connection

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// faults describes what a faultConn does to the bytes crossing it, in both
// directions. It is the in-memory counterpart of the mitm proxy, for tests
// that must not depend on sockets' timing.
type faults struct {
	corrupt    float64 // per byte: replace it
	cut        float64 // per byte: remove a run of 1..64 bytes
	failWrites int     // close the transport on this Write call (0 = first); -1 = never
	stallAfter int64   // stop delivering after this many bytes written; -1 = never
	seed       uint64
}

func clean() faults { return faults{failWrites: -1, stallAfter: -1} }

// faultConn applies faults to a transport.
type faultConn struct {
	net.Conn
	f faults

	mu      sync.Mutex
	rng     *rand.Rand
	gapW    int64 // bytes until the next damaged byte, writing side
	gapR    int64
	writes  int
	written int64
	stalled atomic.Bool
	closed  chan struct{}
	once    sync.Once
}

func newFaultConn(c net.Conn, f faults) *faultConn {
	fc := &faultConn{Conn: c, f: f, rng: rand.New(rand.NewPCG(f.seed, 7)), closed: make(chan struct{})}
	fc.gapW, fc.gapR = fc.gap(), fc.gap()
	return fc
}

// gap draws the distance to the next damaged byte (geometric).
func (fc *faultConn) gap() int64 {
	p := fc.f.corrupt + fc.f.cut
	if p <= 0 {
		return math.MaxInt64
	}
	return int64(math.Log(1-fc.rng.Float64())/math.Log(1-p)) + 1
}

// damage returns b with the configured faults applied; gap is the state of
// one direction.
func (fc *faultConn) damage(b []byte, gap *int64) []byte {
	if fc.f.corrupt+fc.f.cut <= 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		if *gap > int64(len(b)) {
			*gap -= int64(len(b))
			return append(out, b...)
		}
		i := int(*gap) - 1
		out = append(out, b[:i]...)
		b = b[i:]
		if fc.rng.Float64()*(fc.f.corrupt+fc.f.cut) < fc.f.corrupt {
			out = append(out, b[0]^byte(1+fc.rng.IntN(255)))
			b = b[1:]
		} else {
			b = b[min(len(b), 1+fc.rng.IntN(64)):]
		}
		*gap = fc.gap()
	}
	return out
}

var errInjected = errors.New("test: injected transport failure")

func (fc *faultConn) Write(p []byte) (int, error) {
	fc.mu.Lock()
	if fc.f.failWrites >= 0 && fc.writes >= fc.f.failWrites {
		fc.mu.Unlock()
		fc.Close()
		return 0, errInjected
	}
	fc.writes++
	if fc.f.stallAfter >= 0 && fc.written+int64(len(p)) > fc.f.stallAfter {
		fc.stalled.Store(true)
	}
	fc.written += int64(len(p))
	if fc.stalled.Load() {
		fc.mu.Unlock()
		return len(p), nil // a black hole swallows everything
	}
	out := fc.damage(p, &fc.gapW)
	fc.mu.Unlock()
	if _, err := fc.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (fc *faultConn) Read(p []byte) (int, error) {
	for {
		if fc.stalled.Load() {
			<-fc.closed
			return 0, net.ErrClosed
		}
		n, err := fc.Conn.Read(p)
		if n > 0 {
			fc.mu.Lock()
			out := fc.damage(p[:n], &fc.gapR)
			fc.mu.Unlock()
			n = copy(p, out)
			if n == 0 && err == nil {
				continue
			}
		}
		return n, err
	}
}

func (fc *faultConn) Close() error {
	fc.once.Do(func() { close(fc.closed) })
	return fc.Conn.Close()
}

// faultyDialer dials TCP and wraps the n-th transport (from 0) in the faults
// that plan gives for it.
type faultyDialer struct {
	plan  func(n int) faults
	mu    sync.Mutex
	n     int
	conns []*faultConn
}

func (d *faultyDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fc := newFaultConn(c, d.plan(d.n))
	d.n++
	d.conns = append(d.conns, fc)
	return fc, nil
}

// dials returns how many transports were opened.
func (d *faultyDialer) dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// killCurrent closes the newest transport, as a network failure would.
func (d *faultyDialer) killCurrent() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) > 0 {
		d.conns[len(d.conns)-1].Close()
	}
}
