package mitm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dir is a direction: up is client to server, down server to client.
type dir int

const (
	dirUp dir = iota
	dirDown
)

func (d dir) String() string {
	switch d {
	case dirUp:
		return "up"
	case dirDown:
		return "down"
	}
	return "both"
}

// dialTimeout bounds dialling the target.
const dialTimeout = 30 * time.Second

// conn is one proxied connection.
type conn struct {
	p      *Proxy
	id     uint64
	client net.Conn
	start  time.Time
	done   chan struct{} // closed by teardown
	pumps  [2]*pump
	left   atomic.Int32   // pumps still running
	wg     sync.WaitGroup // pumps, delivery queues and the watcher

	mu     sync.Mutex // guards the fields below
	server net.Conn
	ended  bool
	reason string
}

// startConn serves client, connection number id, in the background.
func (p *Proxy) startConn(id uint64, client net.Conn) {
	c := &conn{p: p, id: id, client: client, start: time.Now(), done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	p.active.Add(1)
	go c.run()
}

func (c *conn) run() {
	p := c.p
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		p.active.Add(-1)
		p.wg.Done()
	}()
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	dial := p.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	server, err := dial(ctx, "tcp", p.cfg.Target)
	cancel()
	if err != nil {
		p.logEvent(errorLine{Conn: c.id, Kind: "dial-error", Error: err.Error()})
		c.teardown(true, "dial-error")
		return
	}
	c.mu.Lock()
	c.server = server
	ended := c.ended
	c.mu.Unlock()
	if ended { // closed or dropped while dialling
		reset(server)
		return
	}
	logging := p.cfg.Log != nil
	c.pumps[dirUp] = newPump(c, dirUp, c.client, server, logging)
	c.pumps[dirDown] = newPump(c, dirDown, server, c.client, logging)
	c.left.Store(2)
	c.wg.Add(3)
	go c.pumps[dirUp].run()
	go c.pumps[dirDown].run()
	go c.watch()
	c.wg.Wait()
	if logging {
		c.mu.Lock()
		reason := c.reason
		c.mu.Unlock()
		p.logEvent(closeLine{
			Conn: c.id, Kind: "close", Reason: reason,
			Up: c.pumps[dirUp].summary(), Down: c.pumps[dirDown].summary(),
		})
	}
}

// pumpDone is called by each pump when it returns; the last one closes
// the connection.
func (c *conn) pumpDone() {
	if c.left.Add(-1) == 0 {
		c.teardown(false, "eof")
	}
}

// teardown closes both sides once, with a RST if rst is set, and reports
// whether this call did it.
func (c *conn) teardown(rst bool, reason string) bool {
	if !c.end(reason) {
		return false
	}
	c.closeSides(rst)
	return true
}

// end marks the connection ended, once, and reports whether this call did.
func (c *conn) end(reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended = true
	c.reason = reason
	close(c.done)
	return true
}

// closeSides closes both sides, with a RST if rst is set.
func (c *conn) closeSides(rst bool) {
	c.mu.Lock()
	server := c.server
	c.mu.Unlock()
	for _, x := range [...]net.Conn{c.client, server} {
		if x == nil {
			continue
		}
		if rst {
			reset(x)
		} else {
			x.Close()
		}
	}
}

// abort closes the connection because the proxy is closing.
func (c *conn) abort(rst bool) { c.teardown(rst, "closed") }

// fail resets both sides after an error on one (propagating a RST).
func (c *conn) fail() { c.teardown(true, "error") }

// drop resets both sides as a fault: d and off say where (d < 0: DropAll).
func (c *conn) drop(d dir, off int64) {
	reason := "drop"
	if d < 0 {
		reason = "drop-all"
	}
	if !c.end(reason) {
		return
	}
	// Count before the reset, so that whoever sees it sees the counts.
	p := c.p
	p.noteDrop()
	if d >= 0 {
		p.dirs[d].drop.Add(1)
	}
	p.logFault(c.id, d, off, kindDrop, 0)
	c.closeSides(true)
}

// watch implements DropEvery.
func (c *conn) watch() {
	defer c.wg.Done()
	fs := c.p.faults.Load()
	armed := [2]time.Time{c.start, c.start}
	for {
		var deadline time.Time
		which := dir(-1)
		for d := dirUp; d <= dirDown; d++ {
			if e := fs.f[d].DropEvery; e > 0 {
				if t := armed[d].Add(e); which < 0 || t.Before(deadline) {
					deadline, which = t, d
				}
			}
		}
		var fire <-chan time.Time
		var t *time.Timer
		if which >= 0 {
			t = time.NewTimer(time.Until(deadline))
			fire = t.C
		}
		select {
		case <-fire:
			c.drop(which, c.pumps[which].read.Load())
			return
		case <-fs.changed:
			nfs := c.p.faults.Load()
			now := time.Now()
			for d := dirUp; d <= dirDown; d++ {
				if nfs.f[d].DropEvery != fs.f[d].DropEvery {
					armed[d] = now
				}
			}
			fs = nfs
		case <-c.done:
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// reset closes x with a RST (SO_LINGER 0) when it is a TCP connection.
func reset(x net.Conn) {
	if l, ok := x.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	x.Close()
}

// closeWrite half-closes x (sends a FIN) if it can.
func closeWrite(x net.Conn) error {
	if cw, ok := x.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sums hashes one direction's bytes before and after the proxy.
type sums struct {
	in, out hash.Hash
}

func newSums() *sums { return &sums{sha256.New(), sha256.New()} }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
