package connection

import (
	"fmt"
	"time"
)

// readLoop decodes the frames of attachment a until it fails or is replaced.
func (c *Connection) readLoop(a *attachment) {
	defer c.wg.Done()
	lastData := time.Now()
	a.dec.starving = func() {
		c.mu.Lock()
		if c.att == a && (c.ackDue || c.nakDue || c.closeAckDue) {
			c.kick() // answer the burst of frames just handled
		}
		c.mu.Unlock()
	}
	for {
		f, err := a.dec.next()
		if err != nil {
			c.detach(a, err)
			return
		}
		c.mu.Lock()
		if c.att != a {
			c.mu.Unlock()
			return
		}
		now := time.Now()
		c.lastRecv = now
		if f.typ == frameData {
			lastData = now
		} else if now.Sub(lastData) > c.cfg.HeartbeatInterval {
			a.dec.shrink() // idle: keep no buffer sized for long frames
		}
		c.stats.FramesReceived++
		c.rtt.heard()
		if f.typ == frameData {
			c.rxEpoch = f.flags >> 1
		}
		if a.dec.skipped > 0 || a.dec.damaged > 0 {
			c.stats.Damaged += uint64(a.dec.damaged)
			if a.dec.skipped > 0 && a.dec.damaged == 0 {
				c.stats.Damaged++
			}
			a.dec.skipped, a.dec.damaged = 0, 0
			c.askResend()
		}
		err = c.handle(f, now)

		if c.rjob.ring != nil {
			j := c.rjob
			c.rjob = copyJob{}
			c.mu.Unlock()
			ringCopyIn(j.ring, j.off, j.data)
			c.mu.Lock()
			c.rcopy = false
			if !c.closed {
				c.rtail = j.off + uint64(len(j.data))
			}
			c.broadcast()
		}
		c.mu.Unlock()
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// askResend schedules a NAK: at most one per missing offset and go-back
// round of the peer.
func (c *Connection) askResend() {
	if c.nakFor != c.rcvNxt || c.nakEpoch != c.rxEpoch {
		c.nakDue = true
		c.nakFor, c.nakEpoch = c.rcvNxt, c.rxEpoch
	}
}

// handle applies one intact frame to the session state.
func (c *Connection) handle(f frame, now time.Time) error {
	switch f.typ {
	case frameData, frameAck, framePing, frameClose, frameCloseAck:
	default:
		return nil // late handshake frames: ignore
	}
	if f.ack > c.sndMax {
		return fmt.Errorf("%w: peer acknowledges offset %d, only %d sent", ErrProtocol, f.ack, c.sndMax)
	}
	if f.ack < c.sndUna {
		// Acknowledgements never go back (the transport is in order and a
		// resume starts from the peer's real offset): an earlier one was
		// forged, and the bytes it dropped cannot be sent again.
		return fmt.Errorf("%w: peer expects offset %d, below the %d it acknowledged (forged acknowledgement?)", ErrProtocol, f.ack, c.sndUna)
	}
	echo := -1 // the go-back round an ACK echoes: its frames' round trip is unambiguous
	if f.typ == frameAck {
		echo = int(f.flags >> 1)
	}
	c.ackAdvance(f.ack, echo, now)
	if f.ack >= c.sndUna {
		c.peerLim = f.ack + uint64(f.wnd)
	}
	switch f.typ {
	case frameData:
		c.stats.BytesReceived += uint64(len(f.payload))
		if err := c.receive(f); err != nil {
			return err
		}
	case frameAck:
		if f.flags&flagNak != 0 {
			c.stats.NaksReceived++
			if f.ack == c.sndUna && c.sndNxt > c.sndUna && f.flags>>1 == c.epoch {
				c.goBack(now)
			}
		}
	case framePing:
		if c.nakFor == c.rcvNxt {
			c.nakDue = true // still missing what we asked for: ask again
		} else {
			c.ackDue = true
		}
	case frameClose:
		c.peerClosed = true
		c.closeAckDue = true // sent once our own bytes are acknowledged
		c.broadcast()
	case frameCloseAck:
		if c.closing {
			c.finishLocked(nil)
		}
	}
	if c.sndNxt < c.dataEnd() || c.finQueued && c.sndNxt <= c.finSeq {
		c.kick() // the window may have opened
	}
	return nil
}

// receive takes the part of a DATA frame that starts at rcvNxt and fits in
// the receive buffer.
func (c *Connection) receive(f frame) error {
	start := f.seq
	end := f.seq + uint64(len(f.payload))
	fin := f.flags&flagFin != 0
	switch {
	case start > c.rcvNxt:
		// A gap: an earlier frame was damaged (go-back-N drops this one).
		c.askResend()
		return nil
	case end < c.rcvNxt || end == c.rcvNxt && (!fin || c.finRcvd):
		c.ackDue = true // a duplicate: say again where we are
		return nil
	case c.finRcvd:
		return fmt.Errorf("%w: data at offset %d after the end of the stream at %d", ErrProtocol, end, c.rcvNxt-1)
	}
	if c.rcopy {
		return nil // a replaced transport's reader is still copying: drop, it comes again
	}
	data := f.payload[c.rcvNxt-start:]
	take := len(data)
	if !c.closed {
		take = min(take, c.recvFree())
		if take > 0 {
			c.rring = growRing(c.rring, c.rhead, c.rtail, int(c.rcvData-c.rhead)+take, c.cfg.RecvBuffer)
			c.rjob = copyJob{ring: c.rring, off: c.rcvData, data: data[:take]}
			c.rcopy = true
		}
	}
	c.rcvData += uint64(take)
	c.rcvNxt += uint64(take)
	if c.closed {
		c.rhead, c.rtail = c.rcvData, c.rcvData
	}
	if fin && take == len(data) && !c.finRcvd {
		c.finRcvd = true
		c.rcvNxt++
	}
	c.ackDue = true
	c.broadcast()
	return nil
}

// copyJob is received data to copy into the receive ring outside the lock.
type copyJob struct {
	ring []byte
	off  uint64
	data []byte
}
