package connection

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// Peer is what both ends of a session offer: a net.Conn whose CloseWrite
// makes the other end read io.EOF after every earlier byte.
type Peer interface {
	net.Conn
	CloseWrite() error
	SessionID() string
	Stats() Stats
}

var (
	_ Peer = (*Client)(nil)
	_ Peer = (*Accepted)(nil)
)

// Client is the dialling end of a session. When its transport fails it
// redials and resumes the session (see redialLoop for the pace); Read and
// Write only see a delay.
type Client struct {
	*Connection
	network, address string
}

// Dial opens a new session with the server at address. It fails at once if
// the server cannot be reached; a handshake damaged in transit is retried
// Config.DialAttempts times.
func Dial(ctx context.Context, network, address string, cfg *Config) (*Client, error) {
	cfg = cfg.clone()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < cfg.DialAttempts; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, backoff(cfg, attempt)); err != nil {
				return nil, fmt.Errorf("%s: %w (after %w)", address, err, lastErr)
			}
		}
		tr, w, dec, err := dialHandshake(ctx, cfg, network, address, nil, cfg.HandshakeTimeout)
		if err == nil {
			c := newConnection(cfg, "client", w.id, w.secret)
			cl := &Client{Connection: c, network: network, address: address}
			if err := c.attach(tr, dec, 0, w.wnd); err != nil {
				return nil, err
			}
			c.wg.Add(1)
			go cl.redialLoop()
			return cl, nil
		}
		lastErr = err
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// retryable reports whether a failed first handshake may be tried again: a
// damaged or cut handshake is, a refusal or a server that does not speak the
// protocol every time is not (the last attempt's error is returned then).
func retryable(err error) bool {
	if errors.Is(err, errSilentServer) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "remote error") {
		return false // refused, or the peer's TLS alert (for example: not authorized)
	}
	return !permanent(err)
}

// dialHandshake opens a transport and runs the client handshake on it.
func dialHandshake(ctx context.Context, cfg *Config, network, address string, rs *resumeState, timeout time.Duration) (net.Conn, welcome, *decoder, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr, err := cfg.Dial(ctx, network, address)
	if err != nil {
		return nil, welcome{}, nil, fmt.Errorf("%s: %w", address, err)
	}
	w, dec, err := handshakeOn(ctx, cfg, tr, rs)
	if err != nil {
		return nil, welcome{}, nil, err
	}
	return tr, w, dec, nil
}

// handshakeOn runs the client handshake on tr, within ctx; it closes tr if
// the handshake fails.
func handshakeOn(ctx context.Context, cfg *Config, tr net.Conn, rs *resumeState) (welcome, *decoder, error) {
	// A cancelled context interrupts the handshake's reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = tr.SetDeadline(time.Unix(1, 0)) })
	deadline, _ := ctx.Deadline()
	w, dec, err := clientHandshake(tr, deadline, rs, uint32(cfg.RecvBuffer), cfg.SecureAbove)
	if !stop() || err != nil {
		tr.Close()
		if err == nil {
			err = ctx.Err()
		}
		return welcome{}, nil, err
	}
	return w, dec, nil
}

// backoff returns the wait before redial number attempt (from 1): capped
// exponential, with ±50% jitter so that many clients do not return together.
func backoff(cfg *Config, attempt int) time.Duration {
	d := cfg.RedialMin << min(attempt-1, 30)
	if d <= 0 || d > cfg.RedialMax {
		d = cfg.RedialMax
	}
	return d/2 + rand.N(d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var (
	// errAddrGone replaces a transport whose local address the host no
	// longer holds.
	errAddrGone = errors.New("the local address is gone (this machine moved to another network)")
	// errQuiet replaces a silent transport once a new one connected.
	errQuiet = errors.New("the TCP connection went silent while the network works: replaced")
)

// redialLoop watches the transport and replaces it until the session ends.
// The policy (spec.md §5):
//
//   - a connect that fails without reaching the server (network down, no
//     route, address gone, no answer: unreachable) costs the server
//     nothing: a new connect starts every RedialInterval, without waiting
//     for earlier ones (connectRace keeps maxConnects), the first to
//     connect wins;
//   - a server that answers and refuses (connection refused, REJECT busy, a
//     failed handshake) is retried with capped exponential backoff;
//   - a name that does not resolve is dialled at the address the last
//     transport reached;
//   - a change of the host's network cuts the backoff and redials at once;
//     it replaces at once a transport whose local address is gone;
//   - a transport silent for a little longer than a heartbeat around a
//     network change (or for longer without one: quietLimit) is kept while
//     connects race for a new path; the first that connects replaces it,
//     unless it spoke again meanwhile.
func (cl *Client) redialLoop() {
	c := cl.Connection
	defer c.wg.Done()
	changes, unsubscribe := c.cfg.NetworkChanges()
	if unsubscribe != nil {
		defer unsubscribe()
	}
	race := newConnectRace(c.ctx, c.cfg, cl.network, cl.address)
	defer race.stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var (
		lost     time.Time // when the transport was lost; zero while one serves
		attempts int       // connects since the transport was lost
		backoffs int       // answered failures since the last resume or network change
		next     time.Time // when the next connect may start; zero: none wanted
		probing  bool      // the transport is silent: connects look for a new path
		heard    time.Time // the transport's last frame when probing started
		changed  time.Time // the last change of the host's network
		before   uint64    // connects up to this id started before that change
		refusing = refusals{limit: c.cfg.RefusedTimeout}
	)
	markLost := func(now time.Time, why error) {
		lost, attempts, probing = now, 0, false
		refusing.since = time.Time{}
		if next.IsZero() {
			next = now
		}
		cl.notify(StateEvent{Connected: false, Err: why})
	}
	for {
		now := time.Now()
		c.mu.Lock()
		att, last, keyed, srtt := c.att, c.lastRecv, c.keyed, c.srtt()
		if a, ok := c.raddr.(*net.TCPAddr); ok && strings.HasPrefix(cl.network, "tcp") {
			race.lastAddr = a.String()
		}
		c.mu.Unlock()
		wake := now.Add(time.Hour)
		if att == nil {
			if lost.IsZero() {
				markLost(now, errors.New("transport lost"))
			}
			if now.Sub(lost) > c.cfg.ResumeTimeout {
				c.finish(fmt.Errorf("%w (%v)", ErrResumeTimeout, c.cfg.ResumeTimeout))
				return
			}
			wake = lost.Add(c.cfg.ResumeTimeout + time.Millisecond)
		} else if keyed {
			if probing && last.After(heard) {
				probing, next = false, time.Time{} // it spoke again: keep it
				race.cancelAll()
			}
			if !probing {
				// A change around the time the silence began (frames
				// already on their way may still arrive after it) makes
				// the silence suspect sooner.
				near := !changed.IsZero() && changed.After(last.Add(-c.cfg.HeartbeatInterval))
				at := last.Add(c.quietLimit(near, srtt))
				if now.Before(at) {
					wake = at
				} else {
					probing, heard = true, last
					c.cfg.Logger.Debug("connection: transport silent: looking for a new path", "session", c.id.String(), "silent", now.Sub(last))
					if next.IsZero() {
						next = now
					}
				}
			}
		}
		if (att == nil || probing) && !next.IsZero() && !race.full() {
			if !now.Before(next) {
				race.start(c.connectLife(srtt))
				attempts++
				next = now.Add(c.cfg.RedialInterval)
			}
			if next.Before(wake) {
				wake = next
			}
		}
		timer.Reset(time.Until(wake))
		select {
		case <-c.ctx.Done():
			return
		case <-c.detachCh:
		case <-timer.C:
		case nc, ok := <-changes:
			if !ok {
				changes = nil // the watcher ended: timers only
				continue
			}
			changed = time.Now()
			c.cfg.Logger.Debug("connection: network changed", "session", c.id.String(), "addrs", nc.Addrs, "attached", att != nil, "probing", probing)
			if att != nil && !nc.holds(att.tr.LocalAddr()) {
				err := fmt.Errorf("%w: %v", errAddrGone, att.tr.LocalAddr())
				c.detach(att, err)
				if c.ctx.Err() != nil {
					return // not resumable: the session ended with its transport
				}
				markLost(changed, err)
				att = nil
			}
			if att == nil || probing {
				backoffs, next = 0, changed
			}
			before = race.seq
		case res := <-race.results:
			if !race.take(res) {
				continue
			}
			now := time.Now()
			if res.err != nil {
				err := fmt.Errorf("%s: %w", cl.address, res.err)
				if att == nil && refusing.failed(res.err, now) {
					c.finish(fmt.Errorf("%w (for %v): %w", ErrServerGone, c.cfg.RefusedTimeout, res.err))
					return
				}
				// A connect started before the network's last change
				// failed on the old network: no backoff for it.
				if !unreachable(res.err) && res.id > before {
					backoffs++
					next = refusing.cap(now.Add(backoff(c.cfg, backoffs)))
					race.cancelAll()
				}
				if att == nil {
					c.cfg.Logger.Debug("connection: redial failed", "session", c.id.String(), "attempt", attempts, "err", err)
					cl.notify(StateEvent{Connected: false, Attempt: attempts, Err: err})
				}
				continue
			}
			race.cancelAll()
			c.mu.Lock()
			old, revived := c.att, c.lastRecv.After(heard)
			c.mu.Unlock()
			if old != nil {
				if revived || !keyed {
					res.tr.Close()
					probing, next = false, time.Time{}
					continue
				}
				// The path works and the transport says nothing: its TCP
				// is stuck in backoff, or the path changed under it.
				c.detach(old, errQuiet)
				if c.ctx.Err() != nil {
					return // closing and drained: the session ended with its transport
				}
				markLost(now, errQuiet)
				attempts = 1
			}
			err := cl.resumeOn(res.tr)
			if err == nil {
				c.cfg.Logger.Info("connection: resumed", "session", c.id.String(), "attempt", attempts)
				cl.notify(StateEvent{Connected: true, Attempt: attempts})
				lost, backoffs, next = time.Time{}, 0, time.Time{}
				continue
			}
			if c.ctx.Err() != nil {
				return
			}
			var rej *rejectError
			if errors.As(err, &rej) && rej.code == rejectClosed {
				// The server side closed and dropped the session while our
				// transport was down: it had acknowledged what it got.
				c.mu.Lock()
				c.peerClosed = true
				c.finishLocked(nil)
				c.mu.Unlock()
				return
			}
			if permanent(err) {
				c.finish(err)
				return
			}
			backoffs++
			next = now.Add(backoff(c.cfg, backoffs))
			c.cfg.Logger.Debug("connection: resume failed", "session", c.id.String(), "attempt", attempts, "err", err)
			cl.notify(StateEvent{Connected: false, Attempt: attempts, Err: err})
		}
	}
}

// resumeOn resumes the session over tr, a transport just connected.
func (cl *Client) resumeOn(tr net.Conn) error {
	c := cl.Connection
	c.mu.Lock()
	rs := resumeState{id: c.id, secret: c.secret, rcvNxt: c.rcvNxt, wnd: uint32(c.recvFree())}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, c.resumeTimeout())
	defer cancel()
	w, dec, err := handshakeOn(ctx, c.cfg, tr, &rs)
	if err != nil {
		return err
	}
	return c.attach(tr, dec, w.rcvNxt, w.wnd)
}

// srtt returns the smoothed round-trip time, 0 before any measurement.
func (c *Connection) srtt() time.Duration {
	if !c.rtt.measured {
		return 0
	}
	return c.rtt.srtt
}

// quietLimit is how long the transport may stay silent before connects
// look for a new path. The peer speaks at least every HeartbeatInterval,
// so after a change of the host's network a silence a little longer than
// that (two round trips, at most another heartbeat: an outage inflates the
// measured round trip) means the path broke; without a change, wait longer
// (twice the heartbeat, half the dead timeout) before suspecting it.
func (c *Connection) quietLimit(afterChange bool, srtt time.Duration) time.Duration {
	hb := c.cfg.HeartbeatInterval
	if afterChange {
		return hb + min(max(hb/4, 2*srtt), hb)
	}
	return max(2*hb, c.cfg.DeadTimeout/2)
}

// connectLife is how long one connect waits for an answer: a few round
// trips, at least a second (a lost SYN is sent again after one), at most
// the handshake timeout.
func (c *Connection) connectLife(srtt time.Duration) time.Duration {
	return min(max(time.Second, 4*srtt), c.cfg.HandshakeTimeout)
}

// resumeTimeout bounds one resume attempt: a handshake frame damaged in
// transit leaves both ends waiting, so do not wait much longer than the
// path's round trip requires (at least a second, at most HandshakeTimeout).
func (c *Connection) resumeTimeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rtt.measured {
		return c.cfg.HandshakeTimeout
	}
	return min(c.cfg.HandshakeTimeout, max(time.Second, 16*c.rtt.srtt))
}

func (cl *Client) notify(e StateEvent) {
	if f := cl.cfg.OnState; f != nil {
		f(e)
	}
}
