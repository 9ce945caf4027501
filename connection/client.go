package connection

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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
// redials with capped exponential backoff and resumes the session; Read and
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
				return nil, fmt.Errorf("connection: dial %s: %w (after %w)", address, err, lastErr)
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
		return nil, welcome{}, nil, fmt.Errorf("connection: dial %s: %w", address, err)
	}
	// A cancelled context interrupts the handshake's reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = tr.SetDeadline(time.Unix(1, 0)) })
	deadline, _ := ctx.Deadline()
	w, dec, err := clientHandshake(tr, deadline, rs, uint32(cfg.RecvBuffer), cfg.SecureAbove)
	if !stop() || err != nil {
		tr.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, welcome{}, nil, err
	}
	return tr, w, dec, nil
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

// redialLoop replaces each lost transport until the session ends.
func (cl *Client) redialLoop() {
	c := cl.Connection
	defer c.wg.Done()
	for {
		select {
		case <-c.detachCh:
		case <-c.ctx.Done():
			return
		}
		cl.notify(StateEvent{Connected: false, Err: errors.New("transport lost")})
		lost := time.Now()
		for attempt := 1; ; attempt++ {
			c.mu.Lock()
			rs := resumeState{id: c.id, secret: c.secret, rcvNxt: c.rcvNxt, wnd: uint32(c.recvFree())}
			c.mu.Unlock()
			if time.Since(lost) > c.cfg.ResumeTimeout {
				c.finish(fmt.Errorf("%w (%v)", ErrResumeTimeout, c.cfg.ResumeTimeout))
				return
			}
			tr, w, dec, err := dialHandshake(c.ctx, c.cfg, cl.network, cl.address, &rs, c.resumeTimeout())
			if err == nil {
				if err = c.attach(tr, dec, w.rcvNxt, w.wnd); err == nil {
					c.cfg.Logger.Info("connection: resumed", "session", c.id.String(), "attempt", attempt)
					cl.notify(StateEvent{Connected: true, Attempt: attempt})
					break
				}
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
			c.cfg.Logger.Debug("connection: redial failed", "session", c.id.String(), "attempt", attempt, "err", err)
			cl.notify(StateEvent{Connected: false, Attempt: attempt, Err: err})
			if sleepCtx(c.ctx, backoff(c.cfg, attempt)) != nil {
				return
			}
		}
	}
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
