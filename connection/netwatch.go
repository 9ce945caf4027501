package connection

import (
	"net"
	"net/netip"
	"sync"
)

// NetworkChange reports that the host's network changed: an interface went
// up or down, an address or a route came or went.
type NetworkChange struct {
	// Addrs are the host's addresses after the change, or nil when they are
	// not known. A Client whose transport's local address is not among
	// them replaces the transport at once: the host moved to another
	// network (roaming).
	Addrs []netip.Addr
}

// holds reports whether the host still holds the local address of a
// transport, as far as the change tells. Loopback, unspecified and
// non-IP addresses are always held.
func (nc NetworkChange) holds(local net.Addr) bool {
	var ip netip.Addr
	switch a := local.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	}
	ip = ip.Unmap().WithZone("")
	if nc.Addrs == nil || !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, h := range nc.Addrs {
		if h.Unmap().WithZone("") == ip {
			return true
		}
	}
	return false
}

// WatchNetwork is the default Config.NetworkChanges: it subscribes to the
// changes of the host's network. On Linux they come from rtnetlink (links,
// IPv4 and IPv6 addresses and routes); elsewhere nothing comes, and a Client
// relies on its timers. The channel holds one change: a subscriber that
// falls behind finds the latest. stop ends the subscription.
//
// One watcher (one netlink socket and one goroutine) serves every
// subscriber in the process; it runs while there is at least one, and stop
// returns once the last subscriber's watcher has ended.
func WatchNetwork() (changes <-chan NetworkChange, stop func()) {
	return hostNetwork.subscribe()
}

// netWatcher shares one source of network changes among subscribers.
type netWatcher struct {
	// start begins watching and calls changed after each burst of
	// changes, from one goroutine; stop ends it and waits for that
	// goroutine.
	start func(changed func()) (stop func(), err error)
	// addrs lists the host's addresses (nil if unknown).
	addrs func() []netip.Addr

	mu   sync.Mutex
	subs map[chan NetworkChange]struct{}
	stop func() // the running source; nil if none
}

var hostNetwork = netWatcher{start: startNetSource, addrs: hostAddrs}

func (w *netWatcher) subscribe() (<-chan NetworkChange, func()) {
	ch := make(chan NetworkChange, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = make(map[chan NetworkChange]struct{})
	}
	w.subs[ch] = struct{}{}
	if w.stop == nil {
		// Without a source (not supported, or no permission) the
		// subscriber just never hears of a change; the next one retries.
		w.stop, _ = w.start(w.broadcast)
	}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.subs, ch)
			var stop func()
			if len(w.subs) == 0 {
				stop, w.stop = w.stop, nil
			}
			w.mu.Unlock()
			if stop != nil {
				stop() // outside the lock: the source may be broadcasting
			}
		})
	}
}

// broadcast tells every subscriber about a change.
func (w *netWatcher) broadcast() {
	nc := NetworkChange{Addrs: w.addrs()}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		offer(ch, nc)
	}
}

// offer puts v in ch (capacity 1), replacing a value not yet taken. Only
// one goroutine may offer on ch at a time.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// hostAddrs returns the host's interface addresses, nil if they cannot be
// read.
func hostAddrs() []netip.Addr {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(ifas))
	for _, a := range ifas {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
