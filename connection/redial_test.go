package connection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dialMode is how a switchDialer's connects fare.
type dialMode int

const (
	dialOK          dialMode = iota
	dialUnreachable          // fail at once: ENETUNREACH, the local network is down
	dialRefused              // fail at once: ECONNREFUSED, the server is not listening
	dialBlackhole            // no answer: wait for the context (SYNs lost)
)

// switchDialer dials TCP, or fails as a broken network does while its mode
// says so. The transports it opens may report another local address.
type switchDialer struct {
	mu          sync.Mutex
	mode        dialMode
	local       net.Addr // if set, the LocalAddr its transports report
	conns       []net.Conn
	tries       []time.Time // when each connect started
	inflight    int
	maxInflight int
	failed      chan error // every failed connect, if there is room
	// held, if set, gets a channel from each connect, which then waits
	// until it is closed (or its context ends) before doing as its mode
	// said at its start.
	held chan chan struct{}
}

func newSwitchDialer() *switchDialer {
	return &switchDialer{failed: make(chan error, 10000)}
}

func (d *switchDialer) set(m dialMode) {
	d.mu.Lock()
	d.mode = m
	d.mu.Unlock()
}

func (d *switchDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	mode, held := d.mode, d.held
	d.mu.Unlock()
	if held != nil {
		release := make(chan struct{})
		held <- release
		select {
		case <-release:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
	}
	d.mu.Lock()
	d.tries = append(d.tries, time.Now())
	d.inflight++
	d.maxInflight = max(d.maxInflight, d.inflight)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inflight--
		d.mu.Unlock()
	}()
	var err error
	switch mode {
	case dialUnreachable:
		err = &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	case dialRefused:
		err = &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case dialBlackhole:
		<-ctx.Done()
		err = &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	if err != nil {
		select {
		case d.failed <- err:
		default:
		}
		return nil, err
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local != nil {
		c = &addrConn{Conn: c, local: d.local}
	}
	d.conns = append(d.conns, c)
	return c, nil
}

// kill closes the newest transport, as a network failure would.
func (d *switchDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns[len(d.conns)-1].Close()
}

func (d *switchDialer) dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tries)
}

// waitFailures waits for n failed connects.
func (d *switchDialer) waitFailures(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for i := range n {
		select {
		case <-d.failed:
		case <-deadline:
			t.Fatalf("%d failed connects within %v, want %d", i, within, n)
		}
	}
}

// addrConn is a transport that reports another local address.
type addrConn struct {
	net.Conn
	local net.Addr
}

func (c *addrConn) LocalAddr() net.Addr { return c.local }

// fakeNetwork is a host network whose changes the test makes.
type fakeNetwork struct {
	netWatcher
	mu   sync.Mutex
	held []netip.Addr
}

func newFakeNetwork() *fakeNetwork {
	n := &fakeNetwork{}
	n.start = func(func()) (func(), error) { return func() {}, nil }
	n.addrs = func() []netip.Addr {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.held
	}
	return n
}

// change tells the subscribers that the network changed and that the host
// now holds addrs (nil: unknown).
func (n *fakeNetwork) change(addrs ...netip.Addr) {
	n.mu.Lock()
	n.held = addrs
	n.mu.Unlock()
	n.broadcast()
}

// waitSubscribed waits until the network has n subscribers.
func (n *fakeNetwork) waitSubscribed(t *testing.T, want int) {
	t.Helper()
	waitFor(t, func() bool {
		n.netWatcher.mu.Lock()
		defer n.netWatcher.mu.Unlock()
		return len(n.subs) == want
	}, 5*time.Second)
}

// noNetwork watches nothing: only timers drive the Client.
func noNetwork() (<-chan NetworkChange, func()) { return nil, func() {} }

// stateLog collects a Client's state events.
type stateLog struct {
	ch chan StateEvent
}

func newStateLog(cfg *Config) *stateLog {
	l := &stateLog{ch: make(chan StateEvent, 10000)}
	cfg.OnState = func(e StateEvent) {
		select {
		case l.ch <- e:
		default:
		}
	}
	return l
}

// waitConnected waits for a successful resume and returns the events
// before it.
func (l *stateLog) waitConnected(t *testing.T, within time.Duration) []StateEvent {
	t.Helper()
	deadline := time.After(within)
	var before []StateEvent
	for {
		select {
		case e := <-l.ch:
			if e.Connected {
				return before
			}
			before = append(before, e)
		case <-deadline:
			t.Fatalf("no resume within %v (events %v)", within, before)
		}
	}
}

// redialConfig is fastConfig with the defaults' ratios between redial
// pace, backoff and the dead timeout.
func redialConfig(d *switchDialer, watch func() (<-chan NetworkChange, func())) *Config {
	cfg := fastConfig()
	cfg.Dial = d.dial
	cfg.NetworkChanges = watch
	cfg.RedialMin = 20 * time.Millisecond
	cfg.RedialMax = 2 * time.Second
	cfg.RedialInterval = 40 * time.Millisecond
	return cfg
}

// echoed checks that bytes still cross the session both ways.
func echoed(t *testing.T, cl *Client, acc *Accepted, msg string) {
	t.Helper()
	if _, err := cl.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = acc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(acc, got); err != nil || string(got) != msg {
		t.Fatalf("server read %q, %v; want %q", got, err, msg)
	}
}

// While the local network is down every connect fails at once; that costs
// the server nothing, so the client keeps trying every RedialInterval
// instead of backing off to RedialMax, and resumes right after the network
// heals, however long it was down.
func TestRedialUnreachableResumesAtOnceAfterHealing(t *testing.T) {
	d := newSwitchDialer()
	cfg := redialConfig(d, noNetwork)
	states := newStateLog(cfg)
	_, cl, acc := pairWith(t, fastConfig(), cfg)
	d.set(dialUnreachable)
	d.kill()
	// 40 failures: with exponential backoff they would take minutes.
	d.waitFailures(t, 40, 20*time.Second)
	healed := time.Now()
	d.set(dialOK)
	states.waitConnected(t, 10*time.Second)
	took := time.Since(healed)
	t.Logf("resumed %v after healing; RedialInterval %v, RedialMax %v", took, cfg.RedialInterval, cfg.RedialMax)
	if limit := 10 * cfg.RedialInterval; took > limit {
		t.Fatalf("resumed %v after the network healed, want within %v", took, limit)
	}
	echoed(t, cl, acc, "after the outage")
}

// A server that refuses is not hammered: the backoff grows as before, one
// connect at a time.
func TestRedialRefusedBacksOff(t *testing.T) {
	d := newSwitchDialer()
	cfg := redialConfig(d, noNetwork)
	cfg.RedialMin = 100 * time.Millisecond
	cfg.RedialMax = 400 * time.Millisecond
	cfg.RedialInterval = 50 * time.Millisecond
	_, cl, acc := pairWith(t, fastConfig(), cfg)
	d.set(dialRefused)
	d.kill()
	const refusals = 6
	d.waitFailures(t, refusals, 20*time.Second)
	d.mu.Lock()
	tries := d.tries[1 : 1+refusals] // after the first dial
	most := d.maxInflight
	d.mu.Unlock()
	// Wait k (from 1) is backoff(k): at least half of min(RedialMin·2^(k-1),
	// RedialMax), more than RedialInterval.
	for k := 1; k < refusals; k++ {
		gap := tries[k].Sub(tries[k-1])
		low := min(cfg.RedialMin<<(k-1), cfg.RedialMax) / 2
		if gap < low-time.Millisecond {
			t.Errorf("wait %d after a refusal: %v, want at least %v", k, gap, low)
		}
	}
	if most != 1 {
		t.Errorf("%d connects in flight at once to a refusing server, want 1", most)
	}
	d.set(dialOK)
	echoed(t, cl, acc, "the server is back")
}

// Connects whose SYNs are lost do not hold the client up: a new one starts
// every RedialInterval, and the first to connect wins.
func TestRedialDoesNotWaitForLostConnects(t *testing.T) {
	d := newSwitchDialer()
	cfg := redialConfig(d, noNetwork)
	states := newStateLog(cfg)
	_, cl, acc := pairWith(t, fastConfig(), cfg)
	d.set(dialBlackhole)
	d.kill()
	waitFor(t, func() bool { return d.dials() >= 3 }, 5*time.Second) // three connects hang
	healed := time.Now()
	d.set(dialOK)
	states.waitConnected(t, 10*time.Second)
	took := time.Since(healed)
	d.mu.Lock()
	most := d.maxInflight
	d.mu.Unlock()
	t.Logf("resumed %v after healing, with %d connects in flight at most", took, most)
	// A connect waits a second for its answer: resuming sooner proves a
	// later connect won.
	if took >= time.Second/2 {
		t.Fatalf("resumed %v after healing: the client waited for lost connects", took)
	}
	if most < 2 || most > 2*maxConnects {
		t.Fatalf("%d connects in flight at most, want 2..%d", most, 2*maxConnects)
	}
	echoed(t, cl, acc, "after lost SYNs")
}

// A change of the host's network cuts the backoff: the client redials at
// once.
func TestNetworkChangeRedialsAtOnce(t *testing.T) {
	d := newSwitchDialer()
	n := newFakeNetwork()
	cfg := redialConfig(d, n.subscribe)
	cfg.RedialMin, cfg.RedialMax = 10*time.Second, 10*time.Second
	states := newStateLog(cfg)
	_, cl, acc := pairWith(t, fastConfig(), cfg)
	n.waitSubscribed(t, 1)
	d.set(dialRefused)
	d.kill()
	d.waitFailures(t, 1, 5*time.Second) // now waiting 5..15 s
	d.set(dialOK)
	changed := time.Now()
	n.change()
	states.waitConnected(t, 4*time.Second)
	t.Logf("resumed %v after the network changed", time.Since(changed))
	echoed(t, cl, acc, "after the change")
}

// A connect started before the network changed that fails after a
// connect started since: its failure tells nothing of the new network, so
// it neither backs off nor cancels the new connect.
func TestFailureFromBeforeTheChange(t *testing.T) {
	d := newSwitchDialer()
	n := newFakeNetwork()
	cfg := redialConfig(d, n.subscribe)
	cfg.RedialMin, cfg.RedialMax = 10*time.Second, 10*time.Second
	cfg.RedialInterval = 10 * time.Second // no connect but the first and the change's
	states := newStateLog(cfg)
	_, cl, acc := pairWith(t, fastConfig(), cfg)
	n.waitSubscribed(t, 1)
	held := make(chan chan struct{}, 4)
	d.mu.Lock()
	d.held = held
	d.mu.Unlock()
	next := func(what string) chan struct{} {
		t.Helper()
		select {
		case r := <-held:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s within 5s", what)
			return nil
		}
	}
	d.set(dialRefused)
	d.kill()
	first := next("connect after the loss")
	d.set(dialOK)
	n.change()
	second := next("connect after the change")
	close(first) // refused, after the change
	deadline := time.After(5 * time.Second)
	for refused := false; !refused; {
		select {
		case e := <-states.ch:
			refused = errors.Is(e.Err, syscall.ECONNREFUSED)
		case <-deadline:
			t.Fatal("the first connect's failure was not reported within 5s")
		}
	}
	close(second)
	states.waitConnected(t, 4*time.Second)
	echoed(t, cl, acc, "after the change")
}

// Roaming: the transport's local address is gone, so the transport is dead
// and replaced at once rather than after DeadTimeout. A change that keeps
// the address keeps the transport.
func TestRoamingReplacesTransportAtOnce(t *testing.T) {
	d := newSwitchDialer()
	d.local = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
	n := newFakeNetwork()
	cfg := redialConfig(d, n.subscribe)
	cfg.HeartbeatInterval, cfg.DeadTimeout = time.Second, time.Minute
	states := newStateLog(cfg)
	scfg := fastConfig()
	scfg.HeartbeatInterval, scfg.DeadTimeout = time.Second, time.Minute
	_, cl, acc := pairWith(t, scfg, cfg)
	n.waitSubscribed(t, 1)
	echoed(t, cl, acc, "before")

	old, moved := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")
	// An address more: nothing to do. Once the change is taken it is
	// handled before the next.
	n.change(old, moved)
	waitFor(t, func() bool { return len(chanOf(n)) == 0 }, 5*time.Second)
	d.mu.Lock()
	d.local = &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40001}
	d.mu.Unlock()
	changed := time.Now()
	n.change(moved) // the old address is gone
	events := states.waitConnected(t, 5*time.Second)
	t.Logf("resumed %v after the address went", time.Since(changed))
	if len(events) == 0 || !errors.Is(events[0].Err, errAddrGone) {
		t.Fatalf("events before the resume %v, want the address gone first", events)
	}
	if n := d.dials(); n != 2 {
		t.Fatalf("%d dials, want 2: the first change must not have redialled", n)
	}
	if r := cl.Stats().Resumes; r != 1 {
		t.Fatalf("%d resumes, want 1", r)
	}
	echoed(t, cl, acc, "after roaming")
}

// chanOf returns the fake network's only subscriber channel.
func chanOf(n *fakeNetwork) chan NetworkChange {
	n.netWatcher.mu.Lock()
	defer n.netWatcher.mu.Unlock()
	for ch := range n.subs {
		return ch
	}
	return nil
}

// A transport that went silent when the network changed is replaced as
// soon as a new connect gets through, well before DeadTimeout: its TCP may
// wait seconds before sending again.
func TestSilentTransportReplacedAfterNetworkChange(t *testing.T) {
	for _, withEvent := range []bool{true, false} {
		t.Run(fmt.Sprintf("network change %v", withEvent), func(t *testing.T) {
			fw := &stallDialer{}
			n := newFakeNetwork()
			cfg := fastConfig()
			cfg.Dial = fw.dial
			cfg.NetworkChanges = n.subscribe
			cfg.HeartbeatInterval, cfg.DeadTimeout = 100*time.Millisecond, 2*time.Second
			states := newStateLog(cfg)
			scfg := fastConfig()
			scfg.HeartbeatInterval, scfg.DeadTimeout = 100*time.Millisecond, 2*time.Second
			_, cl, acc := pairWith(t, scfg, cfg)
			n.waitSubscribed(t, 1)
			echoed(t, cl, acc, "before")
			cut := time.Now()
			fw.stallCurrent()
			if withEvent {
				n.change()
			}
			events := states.waitConnected(t, 8*time.Second)
			took := time.Since(cut)
			t.Logf("replaced %v after the transport went silent (quiet limit %v after a change, %v without)",
				took, cl.quietLimit(true, 0), cl.quietLimit(false, 0))
			if len(events) == 0 || !errors.Is(events[0].Err, errQuiet) {
				t.Fatalf("events before the resume %v, want the silent transport replaced", events)
			}
			short, long := cl.quietLimit(true, 0), cl.quietLimit(false, 0)
			limit := long + time.Second // before DeadTimeout: errQuiet says so
			if withEvent {
				limit = (short + long) / 2 // sooner than without the change
			}
			if took > limit {
				t.Fatalf("replaced %v after the transport went silent, want within %v", took, limit)
			}
			echoed(t, cl, acc, "after")
		})
	}
}

// stallDialer dials TCP transports that can be made black holes.
type stallDialer struct {
	mu    sync.Mutex
	conns []*holeConn
}

func (d *stallDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hc := &holeConn{Conn: c}
	d.mu.Lock()
	d.conns = append(d.conns, hc)
	d.mu.Unlock()
	return hc, nil
}

func (d *stallDialer) stallCurrent() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns[len(d.conns)-1].hole.Store(true)
}

// holeConn is a transport that becomes a black hole: from then on what is
// written vanishes and what arrives is dropped, even by a Read already
// waiting, and nothing fails (a link gone down under TCP).
type holeConn struct {
	net.Conn
	hole atomic.Bool
}

func (c *holeConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if !c.hole.Load() || err != nil {
			return n, err
		}
	}
}

func (c *holeConn) Write(p []byte) (int, error) {
	if c.hole.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func TestUnreachable(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{op(syscall.ENETUNREACH), true},
		{op(syscall.EHOSTUNREACH), true},
		{op(syscall.ENETDOWN), true},
		{op(syscall.EADDRNOTAVAIL), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{op(syscall.ECONNREFUSED), false},
		{op(syscall.ECONNRESET), false},
		{&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, false},
		{&net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}, false},
		{errors.New("test: refused"), false},
		{&rejectError{code: rejectBusy}, false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestNetworkChangeHolds(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	for _, tc := range []struct {
		nc    NetworkChange
		local net.Addr
		want  bool
	}{
		{NetworkChange{Addrs: addrs}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, true},
		{NetworkChange{Addrs: addrs}, &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1}, true},
		{NetworkChange{Addrs: addrs}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1, Zone: "eth0"}, true},
		{NetworkChange{Addrs: addrs}, &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}, false},
		{NetworkChange{Addrs: []netip.Addr{}}, &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}, false},
		{NetworkChange{}, &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}, true}, // addresses unknown
		{NetworkChange{Addrs: addrs}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, true},
		{NetworkChange{Addrs: addrs}, &net.UnixAddr{Name: "/tmp/x", Net: "unix"}, true},
		{NetworkChange{Addrs: addrs}, nil, true},
	} {
		if got := tc.nc.holds(tc.local); got != tc.want {
			t.Errorf("%v holds %v = %v, want %v", tc.nc.Addrs, tc.local, got, tc.want)
		}
	}
}

// One source serves every subscriber; it stops with the last one and
// starts again with the next.
func TestNetWatcherShared(t *testing.T) {
	var mu sync.Mutex
	starts, stops := 0, 0
	w := &netWatcher{
		start: func(func()) (func(), error) {
			mu.Lock()
			starts++
			mu.Unlock()
			return func() {
				mu.Lock()
				stops++
				mu.Unlock()
			}, nil
		},
		addrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.1")} },
	}
	a, stopA := w.subscribe()
	b, stopB := w.subscribe()
	w.broadcast()
	w.broadcast() // coalesced: each holds the latest
	for _, ch := range []<-chan NetworkChange{a, b} {
		select {
		case nc := <-ch:
			if len(nc.Addrs) != 1 {
				t.Fatalf("change %+v", nc)
			}
		default:
			t.Fatal("a subscriber missed the change")
		}
		select {
		case nc := <-ch:
			t.Fatalf("a second change %+v: changes not coalesced", nc)
		default:
		}
	}
	stopA()
	stopA() // twice is harmless
	mu.Lock()
	if starts != 1 || stops != 0 {
		t.Fatalf("%d starts, %d stops with one subscriber left", starts, stops)
	}
	mu.Unlock()
	stopB()
	_, stopC := w.subscribe()
	stopC()
	mu.Lock()
	defer mu.Unlock()
	if starts != 2 || stops != 2 {
		t.Fatalf("%d starts, %d stops, want 2 and 2", starts, stops)
	}
}

// With maxConnects waited on, a new connect abandons the second oldest,
// keeping the oldest for a slow path; a Dial that ignores its context
// cannot pile up more than 2·maxConnects goroutines.
func TestConnectRaceRotates(t *testing.T) {
	gate := make(chan struct{})
	cfg := &Config{Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		<-gate // ignores ctx, as a slow Dial might
		return nil, ctx.Err()
	}}
	r := newConnectRace(context.Background(), cfg, "tcp", "192.0.2.1:1")
	for range maxConnects + 1 {
		r.start(time.Minute)
	}
	if _, ok := r.live[1]; !ok {
		t.Fatal("the oldest connect was abandoned")
	}
	if _, ok := r.live[2]; ok {
		t.Fatal("the second oldest connect was kept")
	}
	if len(r.live) != maxConnects {
		t.Fatalf("%d connects waited on, want %d", len(r.live), maxConnects)
	}
	for !r.full() {
		r.start(time.Minute)
	}
	if r.running != 2*maxConnects {
		t.Fatalf("%d goroutines when full, want %d", r.running, 2*maxConnects)
	}
	close(gate)
	r.stop()
	if r.running != 0 || len(r.live) != 0 {
		t.Fatalf("after stop: %d running, %d live", r.running, len(r.live))
	}
}

// A name that no longer resolves (the resolver is unreachable while the
// network is down) does not hold up the resume: the client dials the
// address its last transport reached, where the session lives.
func TestRedialFallsBackToLastAddress(t *testing.T) {
	srv, err := Listen("tcp", "127.0.0.1:0", fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const name = "resh-server.invalid"
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	var mu sync.Mutex
	resolves := true
	var dialled []string
	var conns []net.Conn
	cfg := fastConfig()
	cfg.NetworkChanges = noNetwork
	cfg.RedialMin, cfg.RedialMax = 10*time.Second, 10*time.Second // a DNS failure alone would wait that long
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		ok := resolves
		mu.Unlock()
		host, p, _ := net.SplitHostPort(addr)
		if host == name {
			if !ok {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}}
			}
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	states := newStateLog(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, "tcp", net.JoinHostPort(name, port), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.abort()
	acc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	resolves = false
	conns[0].Close()
	mu.Unlock()
	states.waitConnected(t, 5*time.Second)
	echoed(t, cl, acc, "by address")
	mu.Lock()
	defer mu.Unlock()
	if want := "127.0.0.1:" + port; len(dialled) < 3 || dialled[len(dialled)-1] != want {
		t.Fatalf("dialled %v, want the name then %s", dialled, want)
	}
}
