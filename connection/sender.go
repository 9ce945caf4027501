package connection

import (
	"fmt"
	"net"
	"time"
)

// writeLoop sends the frames of attachment a until it fails or is replaced.
// It builds each batch under the lock and writes it outside.
func (c *Connection) writeLoop(a *attachment) {
	defer c.wg.Done()
	var buf []byte
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if c.att != a {
			c.mu.Unlock()
			return
		}
		now := time.Now()
		var next time.Time
		var err error
		var b batch
		buf, next, b, err = c.produce(buf[:0], now)
		c.mu.Unlock()
		if err != nil {
			c.detach(a, err)
			return
		}
		var werr error
		switch {
		case b.hasData && len(b.data.p1) > 0 && a.vectored:
			// Send the payload straight from the pinned ring (writev).
			start := len(buf)
			buf = appendHeader(buf, b.data.h, len(b.data.p1)+len(b.data.p2))
			trailer := payloadTrailer(buf[start:], b.data.p1, b.data.p2)
			v := net.Buffers{buf, b.data.p1, b.data.p2, trailer[:]}
			_, werr = v.WriteTo(a.tr)
			c.unpin()
		case b.hasData:
			buf = appendFrame2(buf, b.data.h, b.data.p1, b.data.p2)
			if len(b.data.p1) > 0 {
				c.unpin()
			}
			fallthrough
		case len(buf) > 0:
			_, werr = a.tr.Write(buf)
		}
		if werr != nil {
			c.detach(a, werr)
			return
		}
		if len(buf) > 0 || b.hasData {
			if b.final {
				c.finish(nil)
				return
			}
			if b.idle {
				buf = nil
			}
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-a.wake:
		case <-timer.C:
		case <-a.done:
			return
		}
	}
}

func (c *Connection) unpin() {
	c.mu.Lock()
	c.pinned--
	c.mu.Unlock()
}

// hdr is a header for a frame sent now, with the current ack and window.
func (c *Connection) hdr(t frameType, flags byte) header {
	wnd := uint32(0)
	if c.closed {
		wnd = uint32(c.cfg.RecvBuffer) // everything is dropped: never stall the peer
	} else if free := c.recvFree(); free > 0 {
		wnd = uint32(free)
	}
	c.advLimit = c.rcvNxt + uint64(wnd)
	c.ackDue = false
	c.stats.FramesSent++
	return header{typ: t, flags: flags, seq: c.sndNxt, ack: c.rcvNxt, wnd: wnd}
}

// produce appends to buf the frames due now: acknowledgements, at most one
// DATA frame, heartbeats and closing frames. It returns when the writer must
// look again if nothing is due.
func (c *Connection) produce(buf []byte, now time.Time) ([]byte, time.Time, batch, error) {
	if since := now.Sub(c.lastRecv); since > c.cfg.DeadTimeout {
		return buf, now, batch{}, fmt.Errorf("%w (nothing for %v)", errSilent, since.Round(time.Millisecond))
	}
	// Retransmission timeout: go back to the oldest unacknowledged byte.
	if len(c.flight) > 0 && !now.Before(c.rtoAt) {
		c.stats.Timeouts++
		if !c.lastRecv.After(c.rtoAt.Add(-c.rtt.rto())) {
			c.rtt.backoff() // nothing heard during the whole timeout
		}
		c.goBack(now)
	}
	// Tail probe: frames in flight and no acknowledgement for two round
	// trips usually means an ACK or NAK was lost; a PING makes the peer say
	// again where it is, long before the retransmission timeout.
	if len(c.flight) > 0 && !c.probed && c.rtt.measured && !now.Before(c.probeAt()) {
		c.probed = true
		c.stats.Probes++
		buf = appendFrame(buf, c.hdr(framePing, 0), nil)
	}
	if c.nakDue {
		c.nakDue = false
		c.stats.NaksSent++
		buf = appendFrame(buf, c.hdr(frameAck, flagNak|c.rxEpoch<<1), nil)
	}
	job, hasData := c.produceData(now)
	if c.ackDue && !hasData {
		buf = appendFrame(buf, c.hdr(frameAck, c.rxEpoch<<1), nil)
	}
	final, idle := false, false
	if c.closing && (c.closeSentAt.IsZero() || now.Sub(c.closeSentAt) >= c.rtt.rto()) {
		c.closeSentAt = now
		buf = appendFrame(buf, c.hdr(frameClose, 0), nil)
	}
	if c.closeAckDue && c.sndUna >= c.dataEnd() {
		// Everything we wrote is acknowledged: answer the peer's CLOSE and
		// end the session; reads still drain what was received.
		c.closeAckDue = false
		buf = appendFrame(buf, c.hdr(frameCloseAck, 0), nil)
		final = true
	}
	if len(buf) == 0 && !hasData && now.Sub(c.lastSend) >= c.cfg.HeartbeatInterval {
		buf = appendFrame(buf, c.hdr(framePing, 0), nil)
		if now.Sub(c.lastRecv) >= c.cfg.HeartbeatInterval || len(c.flight) == 0 {
			c.releaseIdle()
			idle = true
		}
	}
	if len(buf) > 0 || hasData {
		c.lastSend = now
	}
	next := c.lastSend.Add(c.cfg.HeartbeatInterval)
	if dead := c.lastRecv.Add(c.cfg.DeadTimeout + time.Millisecond); dead.Before(next) {
		next = dead
	}
	if len(c.flight) > 0 && c.rtoAt.Before(next) {
		next = c.rtoAt
	}
	if len(c.flight) > 0 && !c.probed && c.rtt.measured && c.probeAt().Before(next) {
		next = c.probeAt()
	}
	if c.closing {
		if t := c.closeSentAt.Add(c.rtt.rto()); t.Before(next) {
			next = t
		}
	}
	return buf, next, batch{final: final, idle: idle, data: job, hasData: hasData}, nil
}

// batch says what the writer does with what produce returned.
type batch struct {
	final   bool // the write ends the session (CLOSE_ACK sent)
	idle    bool // the session is idle: drop the encoding buffer
	hasData bool // data is a DATA frame to encode after the control frames
	data    dataJob
}

// dataJob is a DATA frame decided under the lock and encoded outside it:
// its payload is copied from the send ring, which is pinned meanwhile.
type dataJob struct {
	h      header
	p1, p2 []byte
}

// produceData decides the next DATA frame if the window allows one.
func (c *Connection) produceData(now time.Time) (dataJob, bool) {
	if len(c.flight) >= c.cfg.WindowSize {
		return dataJob{}, false
	}
	end := c.dataEnd()
	limit := min(end, max(c.peerLim, c.sndNxt))
	n := 0
	if c.sndNxt < limit {
		n = int(min(uint64(c.frameSize), limit-c.sndNxt))
	}
	fin := c.finQueued && c.sndNxt+uint64(n) == c.finSeq && c.sndNxt <= c.finSeq
	if n == 0 && !fin {
		return dataJob{}, false
	}
	flags := c.epoch << 1
	frameEnd := c.sndNxt + uint64(n)
	if fin {
		flags |= flagFin
		frameEnd++
	}
	j := dataJob{h: c.hdr(frameData, flags)}
	if n > 0 {
		j.p1, j.p2 = ringSlices(c.sring, c.sndNxt, n)
		if c.pinned == 0 || c.sndNxt < c.pinLo {
			c.pinLo = c.sndNxt
		}
		c.pinned++
	}
	rexmit := c.sndNxt < c.sndMax
	if rexmit {
		c.stats.Retransmits++
	}
	if len(c.flight) == 0 {
		c.rtoAt = now.Add(c.rtt.rto())
	}
	c.flight = append(c.flight, inflight{end: frameEnd, at: now, epoch: c.epoch})
	c.stats.BytesSent += uint64(n)
	c.sndNxt = frameEnd
	c.sndMax = max(c.sndMax, frameEnd)
	return j, true
}

// probeAt is when the tail probe is due: two smoothed round trips (at least
// a millisecond, at most half the RTO) after the oldest frame in flight
// started waiting.
func (c *Connection) probeAt() time.Time {
	rto := c.rtt.rto()
	return c.rtoAt.Add(-rto + min(rto/2, max(2*c.rtt.srtt, time.Millisecond)))
}

// goBack resends everything from the oldest unacknowledged byte, in smaller
// frames: damage is likelier to hit a long frame.
func (c *Connection) goBack(now time.Time) {
	c.epoch = (c.epoch + 1) & epochMask
	c.sndNxt = c.sndUna
	c.flight = c.flight[:0]
	c.probed = false
	c.frameSize = max(c.cfg.MinFrameSize, c.frameSize/2)
	c.clean = 0
}

// ackAdvance takes an acknowledgement of every offset below ack. echo is
// the go-back round the peer last received from (-1 if unknown): the newest
// frame acknowledged gives a round-trip sample if it was sent in that round,
// since each offset is sent once per round (Karn's rule without ambiguity).
func (c *Connection) ackAdvance(ack uint64, echo int, now time.Time) {
	if ack <= c.sndUna {
		return
	}
	c.sndUna = ack
	if c.sndNxt < ack {
		c.sndNxt = ack
	}
	// Drop acknowledged frames; time the newest original one.
	i := 0
	for i < len(c.flight) && c.flight[i].end <= ack {
		i++
	}
	if i > 0 {
		if f := c.flight[i-1]; int(f.epoch) == echo {
			c.rtt.sample(now.Sub(f.at))
		}
		c.clean += i
		if c.clean >= 2*c.cfg.WindowSize && c.frameSize < c.cfg.MaxFrameSize {
			c.frameSize = min(c.cfg.MaxFrameSize, 2*c.frameSize)
			c.clean = 0
		}
		n := copy(c.flight, c.flight[i:])
		c.flight = c.flight[:n]
		c.rtoAt = now.Add(c.rtt.rto())
		c.probed = false
	}
	c.broadcast()
}
