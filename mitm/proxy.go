package mitm

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are the faults applied to one direction of every connection. The
// zero value is a clean, byte-exact passthrough.
type Faults struct {
	// Corrupt is the probability per byte of replacing it with another value.
	Corrupt float64
	// Cut is the probability per byte of removing a run of 1..64 bytes
	// starting there (a framing error).
	Cut float64
	// Dup is the probability per byte of repeating, before it, the run of
	// 1..64 bytes delivered just before it.
	Dup float64
	// Inject is the probability per byte of inserting a run of 1..64 bytes
	// of garbage before it.
	Inject float64
	// Tamper is the probability per payload byte of a DATA frame of the
	// resh connection protocol (connection/spec.md §1) of replacing it with
	// another value and recomputing the frame's pcrc, so that the frame
	// still passes the receiver's checks: an attacker, not line noise.
	// Everything else passes untouched: bytes that are not frames, other
	// frames, and DATA frames whose CRCs do not verify. The tamperer holds
	// each DATA frame until it is complete (at most 1 MiB + 36 bytes); what
	// it holds is passed on untouched at the end of the input, at a drop or
	// a stall, and when Tamper is switched off (with the next bytes read).
	Tamper float64
	// DropAfter resets the connection (RST on both sides) once this many
	// bytes have been read in this direction (0 = off).
	DropAfter int64
	// DropEvery resets the connection this long after it was accepted, or
	// after DropEvery was last changed if that is later (0 = off).
	DropEvery time.Duration
	// StallAfter stops forwarding once this many bytes have been read in
	// this direction, keeping the connection open: a black hole (0 = off).
	// The proxy stops reading, so clearing it resumes without loss.
	StallAfter int64
	// Latency delays every chunk of data by this long.
	Latency time.Duration
	// Jitter adds a delay drawn uniformly from [-Jitter, +Jitter] to
	// Latency (order is preserved, the total is never negative).
	Jitter time.Duration
	// Bandwidth limits the rate in bytes per second (0 = unlimited).
	Bandwidth int64
	// Slice delivers data in separate writes of at most this many bytes
	// (0 = off).
	Slice int
}

// timed reports whether f needs the delivery queue.
func (f *Faults) timed() bool {
	return f.Latency > 0 || f.Jitter > 0 || f.Bandwidth > 0 || f.Slice > 0
}

// mangles reports whether f has a per-byte fault.
func (f *Faults) mangles() bool {
	return f.Corrupt > 0 || f.Cut > 0 || f.Dup > 0 || f.Inject > 0
}

// Validate reports the first invalid field of f.
func (f Faults) Validate() error {
	for _, p := range [...]struct {
		name string
		v    float64
	}{{"corrupt", f.Corrupt}, {"cut", f.Cut}, {"dup", f.Dup}, {"inject", f.Inject}, {"tamper", f.Tamper}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("mitm: %s probability %v not in [0, 1]", p.name, p.v)
		}
	}
	switch {
	case f.DropAfter < 0:
		return errors.New("mitm: negative drop-after")
	case f.DropEvery < 0:
		return errors.New("mitm: negative drop-every")
	case f.StallAfter < 0:
		return errors.New("mitm: negative stall-after")
	case f.Latency < 0:
		return errors.New("mitm: negative latency")
	case f.Jitter < 0:
		return errors.New("mitm: negative jitter")
	case f.Bandwidth < 0:
		return errors.New("mitm: negative bandwidth")
	case f.Slice < 0:
		return errors.New("mitm: negative slice")
	}
	return nil
}

// Config configures a Proxy.
type Config struct {
	// Target is the address dialled for each accepted connection.
	Target string
	// Up are the faults from client to server, Down from server to client.
	Up, Down Faults
	// Refuse is how many connection attempts are refused (accepted then
	// reset at once) after each drop.
	Refuse int
	// Seed seeds every decision; 0 picks one at random (see Proxy.Seed).
	Seed int64
	// Dump, if set, receives a hex dump of the traffic as read from each
	// side (before the faults), each chunk headed by its connection,
	// direction and input offset.
	Dump io.Writer
	// Log, if set, receives one JSON line per fault and one per closed
	// connection with byte counts and SHA-256 sums (see the package
	// documentation). Writes are serialized.
	Log io.Writer
	// Dial, if set, dials the target instead of a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DirStats are the counters of one direction.
type DirStats struct {
	In      int64 // bytes read from the sending side
	Out     int64 // bytes written to the receiving side
	Corrupt int64 // bytes corrupted
	Cut     int64 // runs removed
	Dup     int64 // runs repeated
	Inject  int64 // runs of garbage inserted
	Tamper  int64 // DATA payload bytes tampered
	Drop    int64 // connections reset by DropAfter or DropEvery
	Stall   int64 // times forwarding stalled
}

// Stats are a Proxy's counters since it was created.
type Stats struct {
	Accepted int64 // connections accepted, including refused ones
	Refused  int64 // connections refused
	Dropped  int64 // connections reset by a drop fault or DropAll
	Active   int64 // connections being served now
	Up, Down DirStats
}

// dirCounters are the live counters behind DirStats.
type dirCounters struct {
	in, out                                atomic.Int64
	corrupt, cut, dup, inject, drop, stall atomic.Int64
	tamper                                 atomic.Int64
}

func (c *dirCounters) fault(kind int) {
	switch kind {
	case kindCorrupt:
		c.corrupt.Add(1)
	case kindCut:
		c.cut.Add(1)
	case kindDup:
		c.dup.Add(1)
	case kindInject:
		c.inject.Add(1)
	case kindDrop:
		c.drop.Add(1)
	case kindStall:
		c.stall.Add(1)
	case kindTamper:
		c.tamper.Add(1)
	}
}

func (c *dirCounters) stats() DirStats {
	return DirStats{
		In: c.in.Load(), Out: c.out.Load(),
		Corrupt: c.corrupt.Load(), Cut: c.cut.Load(), Dup: c.dup.Load(),
		Inject: c.inject.Load(), Tamper: c.tamper.Load(), Drop: c.drop.Load(), Stall: c.stall.Load(),
	}
}

// faultSet is the current faults; changed is closed when it is replaced.
type faultSet struct {
	f       [2]Faults // indexed by dir
	changed chan struct{}
}

// Proxy is a fault-injecting TCP proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	cfg    Config
	seed   int64
	faults atomic.Pointer[faultSet]
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	refuse      atomic.Int64 // connection attempts still to refuse
	refuseAfter atomic.Int64 // Refuse: attempts refused after each drop
	nconn       atomic.Uint64

	accepted, refused, dropped, active atomic.Int64
	dirs                               [2]dirCounters

	mu        sync.Mutex // guards the fields below and SetFaults
	listeners map[net.Listener]struct{}
	first     net.Listener
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup // serve loops and connections

	outMu sync.Mutex // serializes writes to Dump and Log
}

// New returns a Proxy for cfg; call Serve to use it. A Seed of 0 is
// replaced by a random one.
func New(cfg Config) *Proxy {
	p := &Proxy{cfg: cfg, seed: cfg.Seed}
	for p.seed == 0 {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			p.seed = time.Now().UnixNano()
		} else {
			p.seed = int64(binary.LittleEndian.Uint64(b[:]) >> 1)
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.refuseAfter.Store(int64(cfg.Refuse))
	p.faults.Store(&faultSet{f: [2]Faults{cfg.Up, cfg.Down}, changed: make(chan struct{})})
	p.listeners = make(map[net.Listener]struct{})
	p.conns = make(map[*conn]struct{})
	return p
}

// Start listens on the TCP address listen (such as "127.0.0.1:0") and
// serves in the background until Close.
func Start(listen string, cfg Config) (*Proxy, error) {
	if err := cfg.Up.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Down.Validate(); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("mitm: %w", err)
	}
	p := New(cfg)
	if !p.track(l) {
		l.Close()
		return nil, errors.New("mitm: proxy closed")
	}
	go p.serve(l)
	return p, nil
}

// track registers l and counts its serve loop; false if p is closed.
func (p *Proxy) track(l net.Listener) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.listeners[l] = struct{}{}
	if p.first == nil {
		p.first = l
	}
	p.wg.Add(1)
	return true
}

// Serve accepts connections on l and proxies them until Close, then
// returns nil. It closes l.
func (p *Proxy) Serve(l net.Listener) error {
	if !p.track(l) {
		l.Close()
		return nil
	}
	return p.serve(l)
}

func (p *Proxy) serve(l net.Listener) error {
	defer p.wg.Done()
	defer l.Close()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return nil
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-p.ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("mitm: accept: %w", err)
		}
		backoff = 0
		p.accepted.Add(1)
		id := p.nconn.Add(1)
		if p.takeRefusal() {
			p.refused.Add(1)
			p.logFault(id, -1, -1, kindRefuse, 0)
			reset(c)
			continue
		}
		p.startConn(id, c)
	}
}

// isTemporary reports whether an Accept error is worth retrying (such as
// EMFILE or ECONNABORTED).
func isTemporary(err error) bool {
	var t interface {
		Timeout() bool
		Temporary() bool
	}
	return errors.As(err, &t) && (t.Timeout() || t.Temporary())
}

// takeRefusal consumes one pending refusal, if any.
func (p *Proxy) takeRefusal() bool {
	for {
		r := p.refuse.Load()
		if r <= 0 {
			return false
		}
		if p.refuse.CompareAndSwap(r, r-1) {
			return true
		}
	}
}

// Addr returns the address of the listener (the first one, if Serve was
// called several times), or nil.
func (p *Proxy) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first == nil {
		return nil
	}
	return p.first.Addr()
}

// SetFaults replaces the faults of both directions. Live connections use
// them from their next byte.
func (p *Proxy) SetFaults(up, down Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.faults.Load()
	p.faults.Store(&faultSet{f: [2]Faults{up, down}, changed: make(chan struct{})})
	close(old.changed)
}

// Faults returns the current faults of both directions.
func (p *Proxy) Faults() (up, down Faults) {
	fs := p.faults.Load()
	return fs.f[dirUp], fs.f[dirDown]
}

// Heal clears every fault and pending refusal: from the next byte, the
// proxy is a clean passthrough (Config.Refuse still applies to later
// drops; see SetRefuseAfterDrop).
func (p *Proxy) Heal() {
	p.SetRefuse(0)
	p.SetFaults(Faults{}, Faults{})
}

// SetRefuse makes the proxy refuse (accept then reset) the next n
// connection attempts, starting now; 0 stops refusing.
func (p *Proxy) SetRefuse(n int) {
	p.refuse.Store(int64(n))
}

// SetRefuseAfterDrop changes Config.Refuse: how many connection attempts
// are refused after each drop.
func (p *Proxy) SetRefuseAfterDrop(n int) {
	p.refuseAfter.Store(int64(n))
}

// noteDrop records that a connection was reset by a fault and arms the
// refusals that follow a drop (keeping a larger pending count).
func (p *Proxy) noteDrop() {
	p.dropped.Add(1)
	n := p.refuseAfter.Load()
	for { // refuse = max(refuse, n)
		r := p.refuse.Load()
		if r >= n || p.refuse.CompareAndSwap(r, n) {
			return
		}
	}
}

// DropAll resets every live connection (both sides) now. It counts as a
// drop: the next Config.Refuse connection attempts are refused.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.drop(-1, -1)
	}
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted: p.accepted.Load(),
		Refused:  p.refused.Load(),
		Dropped:  p.dropped.Load(),
		Active:   p.active.Load(),
		Up:       p.dirs[dirUp].stats(),
		Down:     p.dirs[dirDown].stats(),
	}
}

// Seed returns the seed in use.
func (p *Proxy) Seed() int64 { return p.seed }

// Close stops listening, closes every live connection and waits for all
// the proxy's goroutines to finish. It returns the first error closing a
// listener, if any.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.cancel()
	var err error
	for l := range p.listeners {
		if e := l.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = fmt.Errorf("mitm: %w", e)
		}
	}
	for c := range p.conns {
		c.abort(false)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
