package connection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Connection is the engine shared by Client and Accepted: the send and
// receive state of one session, which outlives any one transport. Its Read,
// Write, Close, CloseWrite and deadline methods make *Client and *Accepted
// net.Conns; it is safe for concurrent use.
type Connection struct {
	cfg    *Config
	role   string
	id     sessionID
	secret [secretLen]byte // resume key: proofs are HMACs keyed by it
	keyed  bool            // secret is set: the session may resume

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc

	mu  sync.Mutex
	rmu sync.Mutex // one Read at a time
	wmu sync.Mutex // one Write at a time: a Write's bytes stay together

	// Send side: sring holds the bytes from sndUna to sEnd.
	sring     []byte
	sEnd      uint64 // one past the last byte Write accepted
	wcopy     bool   // a Write is copying into sring
	pinned    int    // the writer goroutine is copying from sring...
	pinLo     uint64 // ...from this offset on: not free even if acknowledged
	sndUna    uint64 // oldest unacknowledged offset
	sndNxt    uint64 // next offset to transmit
	sndMax    uint64 // highest offset ever transmitted, plus one
	finQueued bool   // CloseWrite called: the stream ends at finSeq
	finSeq    uint64
	peerLim   uint64 // the peer buffers offsets below ack+wnd
	flight    []inflight
	frameSize int
	clean     int // frames acknowledged in a row without retransmission
	rtt       rttEstimator
	rtoAt     time.Time
	probed    bool // a tail probe was sent for the current oldest frame
	epoch     byte // go-back round, carried in DATA flags

	// Receive side: rring holds the bytes from rhead (next for Read) to
	// rtail; rcvData is the end of the data accepted (copied up to rtail).
	rring    []byte
	rhead    uint64
	rtail    uint64
	rcvData  uint64
	rcopy    bool    // the reader goroutine is copying into rring...
	rjob     copyJob // ...this
	rread    bool    // a Read is copying out of rring
	rcvNxt   uint64
	finRcvd  bool
	ackDue   bool
	nakDue   bool
	nakFor   uint64 // rcvNxt of the last NAK
	nakEpoch byte   // the peer's go-back round the last NAK answered
	rxEpoch  byte   // the peer's round in the last DATA frame
	advLimit uint64 // rcvNxt+wnd in the last frame sent

	// Lifecycle.
	closed      bool // Close called
	closing     bool // drained: send CLOSE until answered
	closeSentAt time.Time
	peerClosed  bool // CLOSE received
	closeAckDue bool
	done        bool  // the session is over; err says why
	err         error // reason the session ended, nil after a clean close

	rdDeadline, wrDeadline time.Time
	changed                chan struct{} // closed and replaced on change
	waited                 bool          // someone waits on changed

	att           *attachment
	gen           uint64
	detachCh      chan struct{} // signalled when the transport is lost
	detachTmr     *time.Timer
	detachTimeout time.Duration // SetDetachTimeout's, if set; else cfg.DetachTimeout
	lastRecv      time.Time
	lastSend      time.Time
	lastWrite     time.Time // when Write last took bytes
	laddr         net.Addr
	raddr         net.Addr
	onFinish      func()
	stats         Stats
	wg            sync.WaitGroup
	finishedCh    chan struct{}
}

// inflight is one DATA frame sent and not yet acknowledged.
type inflight struct {
	end   uint64
	at    time.Time
	epoch byte
}

// Stats counts what a session went through.
type Stats struct {
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64 // payload bytes, retransmissions included
	Retransmits                uint64 // DATA frames sent again
	Timeouts                   uint64 // retransmission timeouts
	Probes                     uint64 // tail probes (PING after two round trips without ACK)
	NaksSent, NaksReceived     uint64
	Damaged                    uint64 // frames or runs of bytes dropped as damaged
	Resumes                    uint64 // transports attached after the first
	FrameSize                  int    // current DATA payload size
}

// attachment is one transport serving the session, with its reader and
// writer goroutines.
type attachment struct {
	tr       net.Conn
	vectored bool // tr writes net.Buffers with one system call (writev)
	dec      *decoder
	gen      uint64
	wake     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func (a *attachment) fail() {
	a.once.Do(func() {
		a.tr.Close()
		close(a.done)
	})
}

func newConnection(cfg *Config, role string, id sessionID, secret [secretLen]byte) *Connection {
	c := &Connection{
		cfg:        cfg,
		role:       role,
		id:         id,
		secret:     secret,
		keyed:      !cfg.SecureAbove,
		frameSize:  cfg.MaxFrameSize,
		rtt:        newRTTEstimator(cfg.MinRTO, cfg.MaxRTO),
		nakFor:     ^uint64(0), // no NAK sent yet
		changed:    make(chan struct{}),
		detachCh:   make(chan struct{}, 1),
		finishedCh: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// SetDetachTimeout changes, for this session only, how long a Server keeps
// it once its transport is lost (Config.DetachTimeout), from the next loss
// on: a master gives its executors' links a shorter one than its clients'
// sessions, once it knows which is which. It does nothing on a Client.
func (c *Connection) SetDetachTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detachTimeout = d
}

// Attached reports whether the session has a transport now: false while it
// waits for a resume (or redials), and once it ended.
func (c *Connection) Attached() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.att != nil && !c.done
}

// ResumeKeySize is the length of the key SetResumeKey takes.
const ResumeKeySize = secretLen

// SetResumeKey installs the key that proves a resume, for a session secured
// from above (Config.SecureAbove): both ends call it with the same secret,
// derived from the security layer's own session (for TLS 1.3, its exporter;
// see spec.md §3.1), once that layer's handshake is done. From then on the
// session survives lost transports. It may be called once, with
// ResumeKeySize bytes.
func (c *Connection) SetResumeKey(key []byte) error {
	if len(key) != ResumeKeySize {
		return fmt.Errorf("resume key of %d bytes, want %d", len(key), ResumeKeySize)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.cfg.SecureAbove:
		return errors.New("SetResumeKey on a session not secured from above (Config.SecureAbove)")
	case c.keyed:
		return errors.New("resume key already set")
	case c.done:
		if c.err != nil {
			return c.err
		}
		return net.ErrClosed
	}
	copy(c.secret[:], key)
	c.keyed = true
	return nil
}

// SessionID returns a short printable prefix of the session id, for logs.
func (c *Connection) SessionID() string { return c.id.String() }

// Stats returns the session's counters.
func (c *Connection) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.FrameSize = c.frameSize
	return s
}

// broadcast wakes every Read, Write and Close waiting for a change.
func (c *Connection) broadcast() {
	if c.waited {
		close(c.changed)
		c.changed = make(chan struct{})
		c.waited = false
	}
}

// wait releases the lock until something changes or the deadline passes;
// it reports false when the deadline passed.
func (c *Connection) wait(deadline time.Time) bool {
	ch := c.changed
	c.waited = true
	c.mu.Unlock()
	defer c.mu.Lock()
	if deadline.IsZero() {
		<-ch
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// kick wakes the writer goroutine.
func (c *Connection) kick() {
	if c.att != nil {
		select {
		case c.att.wake <- struct{}{}:
		default:
		}
	}
}

// sendFree is the room left in the send ring.
func (c *Connection) sendFree() int {
	low := min(c.sndUna, c.sEnd)
	if c.pinned > 0 {
		low = min(low, c.pinLo)
	}
	return c.cfg.SendBuffer - int(c.sEnd-low)
}

// recvFree is the window: what the receive ring can still take.
func (c *Connection) recvFree() int {
	return c.cfg.RecvBuffer - int(c.rcvData-c.rhead)
}

// releaseIdle gives back empty rings, so that idle and detached sessions
// cost little; a busy session keeps them to avoid churn.
func (c *Connection) releaseIdle() {
	c.releaseSendRing()
	c.releaseRecvRing()
}

func (c *Connection) releaseSendRing() {
	if c.sndUna >= c.sEnd && c.pinned == 0 && !c.wcopy {
		c.sring = nil
	}
}

func (c *Connection) releaseRecvRing() {
	if c.rhead == c.rcvData && !c.rcopy && !c.rread {
		c.rring = nil
	}
}

// readIdle is called, with c.mu held, when the reader finds that the peer
// sent no data for a heartbeat interval: it gives back the receive ring,
// and the send ring too if nothing was written for as long. The writer
// does so when it sends a heartbeat, but a side whose peer pings first only
// ever answers, and never sends one.
func (c *Connection) readIdle() {
	c.releaseRecvRing()
	if time.Since(c.lastWrite) >= c.cfg.HeartbeatInterval {
		c.releaseSendRing()
	}
}

// dataEnd is the offset one past the last byte Write accepted.
func (c *Connection) dataEnd() uint64 { return c.sEnd }

// Read reads bytes the peer wrote, in order. After the peer's CloseWrite or
// Close it returns io.EOF once every earlier byte was read.
func (c *Connection) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		if live := c.rtail - c.rhead; live > 0 && len(p) > 0 {
			n := int(min(uint64(len(p)), live))
			ring, off := c.rring, c.rhead
			c.rread = true
			c.mu.Unlock()
			ringCopyOut(p[:n], ring, off)
			c.mu.Lock()
			c.rread = false
			c.rhead += uint64(n)
			// Reopen the window when it had closed to less than half.
			half := uint64(c.cfg.RecvBuffer) / 2
			if c.advLimit-c.rcvNxt < half && uint64(c.recvFree()) >= half {
				c.ackDue = true
				c.kick()
			}
			return n, nil
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.finRcvd && c.rhead == c.rcvData {
			return 0, io.EOF
		}
		if c.done && c.rhead == c.rcvData {
			return 0, c.readErr()
		}
		if !c.rdDeadline.IsZero() && !time.Now().Before(c.rdDeadline) {
			return 0, os.ErrDeadlineExceeded
		}
		c.wait(c.rdDeadline)
	}
}

func (c *Connection) readErr() error {
	if c.err == nil || c.peerClosed {
		return fmt.Errorf("%w before closing its stream", ErrPeerClosed)
	}
	return c.err
}

// Write writes p to the session. It returns once every byte is buffered for
// sending; it blocks while the send buffer is full, and keeps waiting (up to
// the write deadline) while the transport is being replaced.
func (c *Connection) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	written := 0
	for {
		switch {
		case c.closed:
			return written, net.ErrClosed
		case c.finQueued:
			return written, ErrWriteAfterCloseWrite
		case c.peerClosed:
			return written, ErrPeerClosed
		case c.done:
			return written, c.err
		}
		if written == len(p) {
			return written, nil
		}
		if !c.wrDeadline.IsZero() && !time.Now().Before(c.wrDeadline) {
			return written, os.ErrDeadlineExceeded
		}
		if free := c.sendFree(); free > 0 {
			n := min(free, len(p)-written)
			lo := c.sEnd - uint64(c.cfg.SendBuffer-free) // oldest byte still needed
			c.sring = growRing(c.sring, lo, c.sEnd, int(c.sEnd-lo)+n, c.cfg.SendBuffer)
			ring, off := c.sring, c.sEnd
			c.wcopy = true
			c.mu.Unlock()
			ringCopyIn(ring, off, p[written:written+n])
			c.mu.Lock()
			c.wcopy = false
			if c.finQueued || c.closed {
				continue // CloseWrite or Close raced with this Write
			}
			c.sEnd += uint64(n)
			c.lastWrite = time.Now()
			written += n
			c.kick()
			continue
		}
		c.wait(c.wrDeadline)
	}
}

// CloseWrite ends the stream: the peer reads io.EOF after every byte written
// before. Reading goes on. It does not wait; Close does.
func (c *Connection) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.queueFin()
	return nil
}

func (c *Connection) queueFin() {
	if !c.finQueued {
		c.finQueued = true
		c.finSeq = c.sEnd
		c.kick()
		c.broadcast()
	}
}

// Close ends the session. It returns once every byte written before it has
// been acknowledged by the peer, then tells the peer, which reads io.EOF
// after those bytes. While the transport is lost, Close keeps waiting for as
// long as the session is kept (Config.DetachTimeout on a Server,
// Config.ResumeTimeout on a Client). If the peer stays attached but
// acknowledges nothing for Config.DrainTimeout, Close gives up and returns
// ErrDrainTimeout; a Close that gave up is not a clean close, and a Server
// answers a later resume of that session as unknown, not as closed.
func (c *Connection) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.queueFin()
	c.rhead, c.rtail = c.rcvData, c.rcvData // never read now; new bytes are acknowledged and dropped
	c.releaseIdle()
	c.broadcast()
	err := c.drainLocked()
	if err == nil && !c.done {
		// Drained: tell the peer, and wait a little for its answer so that
		// it can drop the session at once. Losing the answer loses us
		// nothing, but the peer may be waiting for the acknowledgement of
		// its own FIN, lost with a transport: a Client that loses its
		// transport now resumes within the linger (the resume handshake
		// acknowledges everything) rather than leave the Server to wait
		// for its detach timeout.
		c.closing = true
		c.kick()
		linger := time.Now().Add(2 * c.cfg.MaxRTO)
		for !c.done && (c.att != nil || c.role == "client") && c.wait(linger) {
		}
	}
	if err == nil && c.done && c.sndUna < c.finSeq {
		err = fmt.Errorf("closing: %d bytes unacknowledged: %w", c.finSeq-c.sndUna, c.err)
		if c.err == nil {
			err = fmt.Errorf("closing: %d bytes unacknowledged: %w", c.finSeq-c.sndUna, ErrPeerClosed)
		}
	}
	// A drain that gave up is not a clean close: the Server must not tell
	// a returning client that the session closed normally.
	c.finishLocked(err)
	c.mu.Unlock()
	c.wg.Wait()
	return err
}

// drainLocked waits until the peer has acknowledged every byte up to and
// including the FIN, or the session ended. Only time spent attached without
// progress counts towards Config.DrainTimeout: while the transport is lost,
// the session is kept for as long as it would be without Close (the
// Server's DetachTimeout, the Client's ResumeTimeout), so that a peer that
// comes back still gets everything.
func (c *Connection) drainLocked() error {
	una, since := c.sndUna, time.Now()
	for !c.done && c.sndUna <= c.finSeq {
		if c.att == nil {
			c.wait(time.Time{}) // attach, or the end of the session, wakes us
			una, since = c.sndUna, time.Now()
			continue
		}
		if c.sndUna != una {
			una, since = c.sndUna, time.Now()
		}
		if !c.wait(since.Add(c.cfg.DrainTimeout)) && c.att != nil && c.sndUna == una {
			return fmt.Errorf("%w: %d bytes unacknowledged after %v without progress", ErrDrainTimeout, c.finSeq-c.sndUna, c.cfg.DrainTimeout)
		}
	}
	return nil
}

// Abort ends the session at once, without draining: bytes written and not
// yet acknowledged are lost, and the peer only sees its transport go (a
// Server then keeps the session for its detach timeout). It is for a user
// who leaves while the network is down; Close is the way to end a session
// that delivers everything. Reads and writes then fail with ErrAborted.
func (c *Connection) Abort() {
	c.finish(ErrAborted)
	c.wg.Wait()
}

// finishLocked ends the session: no transport any more, every waiter woken.
func (c *Connection) finishLocked(err error) {
	if c.done {
		return
	}
	c.done = true
	c.err = err
	c.cancel()
	if c.detachTmr != nil {
		c.detachTmr.Stop()
	}
	if a := c.att; a != nil {
		c.att = nil
		a.fail()
	}
	close(c.finishedCh)
	c.broadcast()
	if f := c.onFinish; f != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			f()
		}()
	}
}

func (c *Connection) finish(err error) {
	c.mu.Lock()
	c.finishLocked(err)
	c.mu.Unlock()
}

// LocalAddr returns the local address of the current (or last) transport.
func (c *Connection) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laddr
}

// RemoteAddr returns the remote address of the current (or last) transport.
func (c *Connection) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raddr
}

// SetDeadline sets the read and write deadlines.
func (c *Connection) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdDeadline, c.wrDeadline = t, t
	c.broadcast()
	return nil
}

// SetReadDeadline sets the deadline for Read; a Read past it fails with an
// error whose Timeout() is true (os.ErrDeadlineExceeded).
func (c *Connection) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdDeadline = t
	c.broadcast()
	return nil
}

// SetWriteDeadline sets the deadline for Write.
func (c *Connection) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrDeadline = t
	c.broadcast()
	return nil
}

// attach starts serving the session over tr. peerRcvNxt is the next offset
// the peer expects (from the handshake) and peerWnd its window.
func (c *Connection) attach(tr net.Conn, dec *decoder, peerRcvNxt uint64, peerWnd uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attachLocked(tr, dec, peerRcvNxt, peerWnd)
}

// attachFirst is attach for the transport a new session was made on, once
// its welcome is written: the client may have lost that transport at once
// and resumed on another, attached meanwhile; then tr is dropped.
func (c *Connection) attachFirst(tr net.Conn, dec *decoder, peerWnd uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen > 0 {
		tr.Close()
		return nil
	}
	return c.attachLocked(tr, dec, 0, peerWnd)
}

func (c *Connection) attachLocked(tr net.Conn, dec *decoder, peerRcvNxt uint64, peerWnd uint32) error {
	if c.done {
		tr.Close()
		return c.err
	}
	if peerRcvNxt < c.sndUna || peerRcvNxt > c.sndMax {
		tr.Close()
		err := fmt.Errorf("%w: peer resumes at offset %d, outside %d..%d", ErrProtocol, peerRcvNxt, c.sndUna, c.sndMax)
		c.finishLocked(err)
		return err
	}
	if old := c.att; old != nil {
		old.fail()
	} else if c.gen > 0 {
		c.stats.Resumes++
	}
	if c.detachTmr != nil {
		c.detachTmr.Stop()
	}
	c.gen++
	a := &attachment{tr: tr, dec: dec, gen: c.gen, wake: make(chan struct{}, 1), done: make(chan struct{})}
	dec.idle = c.readIdle
	_, a.vectored = tr.(*net.TCPConn)
	c.att = a
	c.laddr, c.raddr = tr.LocalAddr(), tr.RemoteAddr()
	now := time.Now()
	c.lastRecv, c.lastSend = now, now
	c.ackAdvance(peerRcvNxt, -1, now)
	c.peerLim = peerRcvNxt + uint64(peerWnd)
	if c.sndMax > c.sndUna {
		// Go back: resend whatever was not acknowledged, in smaller frames,
		// for the path may cut every transport before a long frame passes.
		c.goBack(now)
	}
	c.ackDue = true
	c.closeSentAt = time.Time{}
	c.wg.Add(2)
	go c.readLoop(a)
	go c.writeLoop(a)
	c.broadcast()
	return nil
}

// detach drops transport a after an error; the owner (the Client's redial
// loop or the Server's detach timer) decides what happens next.
func (c *Connection) detach(a *attachment, err error) {
	a.fail()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.att != a {
		return
	}
	c.att = nil
	c.sndNxt = c.sndUna
	c.flight = c.flight[:0]
	c.releaseIdle()
	c.cfg.Logger.Debug("connection: transport lost", "role", c.role, "session", c.id.String(), "err", err)
	if c.peerClosed || c.closing && c.role == "server" {
		// The peer closed (it reads nothing more and will not come back),
		// or we drained: the peer has every byte. Do not wait for it.
		c.finishLocked(nil)
		return
	}
	if !c.keyed {
		c.finishLocked(fmt.Errorf("%w (%v)", ErrNotKeyed, err))
		return
	}
	c.broadcast()
	if c.role == "server" {
		// Keep the session for its client to resume, then give up.
		gen := c.gen
		d := c.cfg.DetachTimeout
		if c.detachTimeout > 0 {
			d = c.detachTimeout
		}
		c.detachTmr = time.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.att == nil && c.gen == gen {
				c.finishLocked(fmt.Errorf("%w (%v)", ErrSessionExpired, d))
			}
		})
		return
	}
	select {
	case c.detachCh <- struct{}{}:
	default:
	}
}

// errSilent reports a transport on which the peer stayed silent.
var errSilent = errors.New("the other end went silent: connection presumed dead")
